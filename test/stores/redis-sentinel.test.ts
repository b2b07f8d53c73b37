/** redisTokenStore on Redis Sentinel: a store made before the Sentinels can answer for its master. */
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { redisTokenStore, type SharedTokenStore } from '../../stores/index.js';
import { startRedisSentinel } from '../helpers/redis-topology.js';

const sentinel = await startRedisSentinel();
const opened: SharedTokenStore[] = [];
afterAll(async () => {
  for (const shared of opened) await shared.close();
  await sentinel.stop();
});
const cli = (port: number, ...args: string[]) =>
  execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 }).trim();

describe('redisTokenStore on Sentinel', () => {
  it('a master the Sentinels learn of only after node-redis gave up (16 rounds) is used once they know it', async () => {
    const name = `late-${process.pid}`;
    const shared = redisTokenStore(
      { sentinels: sentinel.sentinels.map(({ host, port }) => `redis://${host}:${port}`), name },
      { namespace: name, timeoutMs: 300 },
    );
    opened.push(shared);
    await expect(shared.store.get('k')).rejects.toMatchObject({ name: 'StoreUnavailableError' });
    // node-redis's client tries about once a second and gives up after 16 rounds.
    await new Promise((resolve) => setTimeout(resolve, 19_000));
    const { host, port } = await sentinel.currentMaster();
    for (const each of sentinel.sentinels) cli(each.port, 'SENTINEL', 'MONITOR', name, host, String(port), '2');
    const until = Date.now() + 10_000;
    for (;;) {
      try {
        await shared.store.set('k', { accessToken: 'a', revision: 1 }, 60_000);
        break;
      } catch (error) {
        if (Date.now() > until) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    expect(await shared.store.get('k')).toMatchObject({ accessToken: 'a' });
  }, 45_000);
});
