import { randomUUID } from 'node:crypto';
import { ConfigError } from '../src/errors.js';
import type { AcquireOptions, Lock, LockHandle } from '../src/store.js';
import { bounded, sleep } from './timeout.js';

/** The part of a node-redis client the lock uses (the client `@keyv/redis` exposes has it). */
export interface RedisCommander {
  sendCommand(args: string[]): Promise<unknown>;
}

export interface RedisLockOptions {
  /** Prefix of lock keys. @default 'sluice:lock:' */
  prefix?: string;
  /** Longest wait for one Redis command, in ms. @default 1000 */
  commandTimeoutMs?: number;
  /** First and longest pause between attempts while waiting, in ms (backoff with jitter between). @default [25, 200] */
  poll?: readonly [number, number];
}

// Deletes the key only if it still names us: a holder whose lock expired cannot free someone else's.
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
// Extends the key's life only if it still names us.
const EXTEND =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/** `SET key owner NX PX ttl`; owner-checked release by script; waiters poll with backoff and jitter. */
export function redisLock(client: RedisCommander, options: RedisLockOptions = {}): Lock {
  const { prefix = 'sluice:lock:', commandTimeoutMs = 1000, poll = [25, 200] } = options;
  if (!client || typeof client.sendCommand !== 'function') throw new ConfigError('redisLock needs a node-redis client');
  const run = (operation: string, args: string[]) =>
    bounded(`redis lock ${operation}`, commandTimeoutMs, () => client.sendCommand(args));

  return {
    shared: true,
    async acquire(name: string, { ttlMs, waitMs, signal }: AcquireOptions) {
      const key = prefix + name;
      const owner = randomUUID();
      const giveUpAt = Date.now() + waitMs;
      for (let round = 0; ; round++) {
        const started = Date.now();
        const reply = await run('acquire', ['SET', key, owner, 'NX', 'PX', String(Math.ceil(ttlMs))]);
        if (reply === 'OK') {
          let expiresAt = started + ttlMs;
          const handle: LockHandle = {
            key: name,
            owner,
            async extend(ms: number) {
              const sent = Date.now();
              if (sent >= expiresAt) return false;
              try {
                const extended =
                  Number(await run('extend', ['EVAL', EXTEND, '1', key, owner, String(Math.ceil(ms))])) === 1;
                if (extended) expiresAt = sent + ms;
                return extended;
              } catch {
                return false;
              }
            },
            async isHeld() {
              if (Date.now() >= expiresAt) return false;
              try {
                return (await run('check', ['GET', key])) === owner;
              } catch {
                return false;
              }
            },
            async release() {
              await run('release', ['EVAL', RELEASE, '1', key, owner]).catch(() => {});
            },
          };
          return handle;
        }
        const remaining = giveUpAt - Date.now();
        if (remaining <= 0 || signal?.aborted) return undefined;
        const step = Math.min(poll[1], poll[0] * 2 ** Math.min(round, 6));
        await sleep(Math.min(remaining, step / 2 + Math.random() * (step / 2)));
      }
    },
  };
}
