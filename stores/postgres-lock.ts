import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { ConfigError } from '../src/errors.js';
import type { AcquireOptions, Lock, LockHandle } from '../src/store.js';
import { bounded, clampTimer, sleep } from './timeout.js';

export interface PostgresLockOptions {
  /** Longest wait for one query, in ms. @default 2000 */
  queryTimeoutMs?: number;
  /** First and longest pause between attempts while waiting, in ms. @default [25, 200] */
  poll?: readonly [number, number];
}

/** A lock name as the signed 64-bit key advisory locks take. */
function lockId(name: string): string {
  return createHash('sha256').update(`sluice:${name}`).digest().readBigInt64BE(0).toString();
}

/**
 * Session advisory locks (`pg_try_advisory_lock`) on a connection held for as long as the lock is.
 * A holder that dies frees the lock with its session. The TTL is enforced by ending the holding
 * session when it passes, so a stuck holder cannot keep others waiting forever.
 */
export function postgresLock(pool: Pool, options: PostgresLockOptions = {}): Lock {
  const { queryTimeoutMs = 2000, poll = [25, 200] } = options;
  if (!pool || typeof pool.connect !== 'function') throw new ConfigError('postgresLock needs a pg Pool');

  async function tryLock(id: string): Promise<PoolClient | undefined> {
    const client = await bounded('postgres lock connect', queryTimeoutMs, () => pool.connect());
    try {
      const result = await bounded('postgres lock acquire', queryTimeoutMs, () =>
        client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [id]),
      );
      if (result.rows[0]?.locked) return client;
      client.release();
      return undefined;
    } catch (error) {
      client.release(true);
      throw error;
    }
  }

  return {
    shared: true,
    async acquire(name: string, { ttlMs, waitMs, signal }: AcquireOptions) {
      const id = lockId(name);
      const giveUpAt = Date.now() + waitMs;
      for (let round = 0; ; round++) {
        const started = Date.now();
        const client = await tryLock(id);
        if (client) {
          let expiresAt = started + ttlMs;
          let live = true;
          const end = (destroy: boolean) => {
            if (!live) return;
            live = false;
            clearTimeout(expiry);
            client.release(destroy);
          };
          // Past the TTL the session is ended, which frees the advisory lock for the next holder.
          let expiry = setTimeout(() => end(true), clampTimer(ttlMs));
          expiry.unref();
          const handle: LockHandle = {
            key: name,
            owner: id,
            isHeld: async () => live && Date.now() < expiresAt,
            async extend(ms: number) {
              if (!live || Date.now() >= expiresAt) return false;
              clearTimeout(expiry);
              expiresAt = Date.now() + ms;
              expiry = setTimeout(() => end(true), clampTimer(ms));
              expiry.unref();
              return true;
            },
            async release() {
              if (!live) return;
              try {
                await bounded('postgres lock release', queryTimeoutMs, () =>
                  client.query('SELECT pg_advisory_unlock($1::bigint)', [id]),
                );
                end(false);
              } catch {
                end(true);
              }
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
    close: () => pool.end(),
  };
}
