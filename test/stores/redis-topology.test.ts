/** The local Redis Cluster and Sentinel helpers start real topologies that node-redis can use. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createCluster, createSentinel } from '@keyv/redis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type RedisCluster,
  type RedisSentinel,
  startRedisCluster,
  startRedisSentinel,
} from '../helpers/redis-topology.js';

const cli = async (port: number, ...args: string[]) =>
  (await promisify(execFile)('redis-cli', ['-p', String(port), ...args])).stdout.trim();

describe('startRedisCluster', () => {
  let cluster: RedisCluster | undefined;
  afterAll(async () => {
    await cluster?.stop();
  }, 10_000);

  it('starts three masters that share the slots', async () => {
    cluster = await startRedisCluster();
    expect(cluster.nodes).toHaveLength(3);
    const client = createCluster({ rootNodes: [{ url: cluster.url }] });
    client.on('error', () => {});
    await client.connect();
    try {
      const keys = Array.from({ length: 20 }, (_, i) => `topology:${i}`);
      for (const key of keys) await client.set(key, key.toUpperCase());
      for (const key of keys) expect(await client.get(key)).toBe(key.toUpperCase());
    } finally {
      await client.close();
    }
    const sizes = await Promise.all(cluster.nodes.map(async ({ port }) => Number(await cli(port, 'DBSIZE'))));
    expect(sizes.reduce((a, b) => a + b)).toBe(20);
    for (const size of sizes) expect(size).toBeGreaterThan(0);
  }, 20_000);
});

describe('startRedisSentinel', () => {
  let sentinel: RedisSentinel | undefined;
  afterAll(async () => {
    await sentinel?.stop();
  }, 10_000);

  it('fails over to the replica, and the sentinel client follows it', async () => {
    sentinel = await startRedisSentinel();
    expect(await sentinel.currentMaster()).toEqual(sentinel.master);
    const client = createSentinel({ name: sentinel.name, sentinelRootNodes: sentinel.sentinels });
    client.on('error', () => {});
    await client.connect();
    try {
      await client.set('before', 'failover');
      const next = await sentinel.failover();
      expect(next).toEqual(sentinel.replica);
      expect(await sentinel.currentMaster()).toEqual(next);

      // The client may still write to the old master until it hears of the switch; retry until it lands on the new one.
      const until = Date.now() + 10_000;
      let attempt = 0;
      while (true) {
        const value = `after-${++attempt}`;
        try {
          await client.set('after', value);
          if ((await cli(next.port, 'GET', 'after')) === value) break;
        } catch (error) {
          if (Date.now() > until) throw error;
        }
        if (Date.now() > until) throw new Error('the sentinel client did not write to the new master within 10 s');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await client.get('before')).toBe('failover');
    } finally {
      await client.close();
    }
  }, 20_000);
});
