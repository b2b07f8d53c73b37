import { randomUUID } from 'node:crypto';
import { ConfigError } from '../src/errors.js';
import { checkNames, own } from '../src/own.js';
import type { AcquireOptions, Lock, LockHandle } from '../src/store.js';
import { backoff, bounded, checkAcquire, checkPoll, sleep } from './timeout.js';

/**
 * The part of a node-redis client the lock uses. The client `@keyv/redis` exposes has it: reuse
 * the connection the token store already opened with `redisLock(keyvRedis.client)`.
 */
export interface RedisCommander {
  sendCommand(args: string[]): Promise<unknown>;
}

export interface RedisLockOptions {
  /**
   * The namespace of the token store this lock goes with: lock keys are `<namespace>:lock:<name>`, the
   * scheme every Sluice store follows. @default 'sluice'
   */
  namespace?: string | undefined;
  /** Prefix of lock keys, in place of the namespace's (the namespace check is then skipped). */
  prefix?: string | undefined;
  /** Longest wait for one Redis command, in ms. @default 1000 */
  commandTimeoutMs?: number | undefined;
  /** First and longest pause between attempts while waiting, in ms (backoff with jitter between). @default [25, 200] */
  poll?: readonly [number, number] | undefined;
}

// Deletes the key only if it still names us: a holder whose lock expired cannot free someone else's.
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
// Extends the key's life only if it still names us.
const EXTEND =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/**
 * `SET key owner NX PX ttl`, with an owner-checked release and extend (Lua scripts, atomic on the
 * server). Waiters poll with exponential backoff and jitter, bounded by `waitMs`. The TTL lives on
 * the server, so a holder that dies, hangs or loses its network frees the lock when it runs out.
 */
export function redisLock(client: RedisCommander, given: RedisLockOptions = {}): Lock {
  const options = own(given);
  checkNames('redisLock', options, new Set(['namespace', 'prefix', 'commandTimeoutMs', 'poll']));
  const { commandTimeoutMs = 1000, poll = [25, 200] } = options;
  const namespace = options.prefix === undefined ? (options.namespace ?? 'sluice') : undefined;
  const prefix = options.prefix ?? `${namespace}:lock:`;
  if (!client || typeof client.sendCommand !== 'function') throw new ConfigError('redisLock needs a node-redis client');
  if (!(commandTimeoutMs > 0)) throw new ConfigError(`redisLock: commandTimeoutMs must be positive`);
  checkPoll('redisLock', poll);
  const run = (operation: string, args: string[]) =>
    bounded(`redis lock ${operation}`, commandTimeoutMs, () => client.sendCommand(args));

  return {
    shared: true,
    namespace,
    async acquire(name: string, acquire: AcquireOptions) {
      checkAcquire('redisLock', acquire);
      const { ttlMs, waitMs, signal } = acquire;
      const key = prefix + name;
      const owner = randomUUID();
      const giveUpAt = Date.now() + waitMs;
      for (let round = 0; ; round++) {
        // Local expiry counts from before the command left: it never outlives the server's.
        const sent = Date.now();
        let reply: unknown;
        try {
          reply = await run('acquire', ['SET', key, owner, 'NX', 'PX', String(Math.ceil(ttlMs))]);
        } catch (error) {
          // The SET may have landed after all: free it rather than leave an orphan until its TTL.
          void run('release', ['EVAL', RELEASE, '1', key, owner]).catch(() => {});
          throw error;
        }
        if (reply === 'OK') return handle(name, key, owner, sent + ttlMs);
        const remaining = giveUpAt - Date.now();
        if (remaining <= 0 || signal?.aborted) return undefined;
        await sleep(Math.min(remaining, backoff(round, poll)), signal);
        if (signal?.aborted) return undefined;
      }
    },
  };

  function handle(name: string, key: string, owner: string, expiresAt: number): LockHandle {
    return {
      key: name,
      owner,
      async isHeld() {
        if (Date.now() >= expiresAt) return false;
        try {
          return (await run('check', ['GET', key])) === owner;
        } catch {
          return false;
        }
      },
      async extend(ms: number) {
        const sent = Date.now();
        if (sent >= expiresAt) return false;
        try {
          const extended = Number(await run('extend', ['EVAL', EXTEND, '1', key, owner, String(Math.ceil(ms))])) === 1;
          if (extended) expiresAt = sent + ms;
          return extended;
        } catch {
          return false;
        }
      },
      async release() {
        expiresAt = 0;
        await run('release', ['EVAL', RELEASE, '1', key, owner]).catch(() => {});
      },
    };
  }
}
