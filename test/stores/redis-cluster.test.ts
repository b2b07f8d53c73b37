/** redisTokenStore on a Redis Cluster: what the conformance suites cannot see (credentials, late start). */
import { execFileSync } from 'node:child_process';
import { Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { redisTokenStore, type SharedTokenStore } from '../../stores/index.js';
import { startRedisCluster } from '../helpers/redis-topology.js';

const cluster = await startRedisCluster();
const opened: SharedTokenStore[] = [];
afterAll(async () => {
  for (const shared of opened) await shared.close();
  await cluster.stop();
});
const cli = (port: number, ...args: string[]) =>
  execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 }).trim();
const open = (...args: Parameters<typeof redisTokenStore>) => {
  const shared = redisTokenStore(...args);
  opened.push(shared);
  return shared;
};
const entry = { accessToken: 'a', revision: 1 };

describe('redisTokenStore on a Cluster', () => {
  // First: the open-socket check counts every socket to the nodes, and no other store is open yet.
  it('close() with every node hung (SIGSTOP) returns within about 2 s and leaves no socket to them open', async () => {
    const shared = redisTokenStore({ cluster: [cluster.url] }, { namespace: `hung-${process.pid}`, timeoutMs: 300 });
    await shared.store.set('k', entry, 60_000);
    const ports = new Set(cluster.nodes.map(({ port }) => port));
    const pids = cluster.nodes.map(({ port }) => Number(/process_id:(\d+)/.exec(cli(port, 'INFO', 'server'))?.[1]));
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      await expect(shared.store.get('k')).rejects.toMatchObject({ name: 'StoreUnavailableError' });
      const started = performance.now();
      await shared.close();
      expect(performance.now() - started).toBeLessThan(3000);
      const open = (process as unknown as { _getActiveHandles(): unknown[] })
        ._getActiveHandles()
        .filter(
          (handle): handle is Socket =>
            handle instanceof Socket && !handle.destroyed && ports.has(handle.remotePort ?? 0),
        );
      expect(open.map((socket) => socket.remotePort)).toEqual([]);
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
  }, 30_000);

  it('a Cluster that refuses the store when it is made is used once it accepts it (the store keeps trying)', async () => {
    // Discovery fails (NOAUTH) until the password is lifted: node-redis gives up after one failed discovery.
    for (const { port } of cluster.nodes) cli(port, 'CONFIG', 'SET', 'requirepass', 'not-yet');
    let shared: SharedTokenStore;
    try {
      shared = open({ cluster: [cluster.url] }, { namespace: `late-${process.pid}`, timeoutMs: 300 });
      await expect(shared.store.get('k')).rejects.toMatchObject({ name: 'StoreUnavailableError' });
    } finally {
      for (const { port } of cluster.nodes)
        cli(port, '-a', 'not-yet', '--no-auth-warning', 'CONFIG', 'SET', 'requirepass', '');
    }
    const until = Date.now() + 10_000;
    for (;;) {
      try {
        await shared.store.set('k', entry, 60_000);
        break;
      } catch (error) {
        if (Date.now() > until) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    expect(await shared.store.get('k')).toMatchObject({ accessToken: 'a' });
  }, 30_000);

  it('credentials in the URL reach every node, not only the first one', async () => {
    for (const { port } of cluster.nodes) cli(port, 'CONFIG', 'SET', 'requirepass', 'node-secret');
    try {
      const shared = open(
        { cluster: [`redis://:node-secret@127.0.0.1:${cluster.nodes[0]!.port}`] },
        {
          namespace: `auth-${process.pid}`,
        },
      );
      // Keys on every master: some land on nodes other than the one named in the URL.
      for (let i = 0; i < 12; i++) await shared.store.set(`key-${i}`, entry, 60_000);
      for (let i = 0; i < 12; i++) expect(await shared.store.get(`key-${i}`)).toMatchObject({ accessToken: 'a' });
      const held = cluster.nodes.map(({ port }) =>
        Number(cli(port, '-a', 'node-secret', '--no-auth-warning', 'DBSIZE')),
      );
      expect(held.filter((keys) => keys > 0).length).toBeGreaterThan(1);
    } finally {
      for (const { port } of cluster.nodes)
        cli(port, '-a', 'node-secret', '--no-auth-warning', 'CONFIG', 'SET', 'requirepass', '');
    }
  }, 30_000);
});
