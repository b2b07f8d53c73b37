import { createHash, randomUUID } from 'node:crypto';
import { ConfigError } from '../src/errors.js';
import { checkNames, own } from '../src/own.js';
import type { AcquireOptions, Lock, LockHandle } from '../src/store.js';
import { backoff, bounded, checkAcquire, checkPoll, clampTimer, sleep } from './timeout.js';

/** What the lock uses of a pooled pg connection (pg's `PoolClient` fits; pg's types are not needed). */
export interface PgPoolClient {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
  release(destroy?: boolean | Error): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}

/** What the lock uses of a pg `Pool`: `new pg.Pool(...)` fits. */
export interface PgPool {
  connect(): Promise<PgPoolClient>;
}

type Pool = PgPool;
type PoolClient = PgPoolClient;

export interface PostgresLockOptions {
  /** Longest wait for one query (or for a connection from the pool), in ms. @default 2000 */
  queryTimeoutMs?: number | undefined;
  /** First and longest pause between attempts while waiting, in ms. @default [25, 200] */
  poll?: readonly [number, number] | undefined;
  /** The namespace of the token store this lock goes with: lock ids are hashes of `<namespace>:<name>`. @default 'sluice' */
  namespace?: string | undefined;
  /** Mixed into every lock id in place of the namespace (the namespace check is then skipped). */
  prefix?: string | undefined;
}

/** A lock name as the signed 64-bit key advisory locks take, and as pg_locks shows it (two oids). */
function lockId(name: string) {
  const id = createHash('sha256').update(name).digest().readBigInt64BE(0);
  const unsigned = BigInt.asUintN(64, id);
  return { id: id.toString(), high: (unsigned >> 32n).toString(), low: (unsigned & 0xffffffffn).toString() };
}

const TRY = `SELECT set_config('idle_in_transaction_session_timeout', $1, true) AS timeout,
  pg_try_advisory_xact_lock($2::bigint) AS locked`;
// Re-arms the server's deadline and checks that this session still holds the lock.
const CHECK = `SELECT set_config('idle_in_transaction_session_timeout', $1, true) AS timeout,
  EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
    AND classid = $2::oid AND objid = $3::oid AND objsubid = 1) AS held`;

/**
 * Transaction-level advisory locks (`pg_try_advisory_xact_lock`) in a transaction held open, on a
 * connection checked out of the pool for as long as the lock is held. The TTL is enforced twice: this
 * process ends the holding session when it passes, and the server itself ends it through
 * `idle_in_transaction_session_timeout` (set to the time left, for this transaction only), so a holder
 * that hangs, is paused or loses its network frees the lock on time too. A holder that dies frees it
 * with its session. Release is a ROLLBACK: a pooled connection never keeps a lock.
 */
export function postgresLock(pool: Pool, given: PostgresLockOptions = {}): Lock {
  const options = own(given);
  checkNames('postgresLock', options, new Set(['queryTimeoutMs', 'poll', 'namespace', 'prefix']));
  const { queryTimeoutMs = 2000, poll = [25, 200] } = options;
  const namespace = options.prefix === undefined ? (options.namespace ?? 'sluice') : undefined;
  const prefix = options.prefix ?? `${namespace}:`;
  if (!pool || typeof pool.connect !== 'function') throw new ConfigError('postgresLock needs a pg Pool');
  if (!(queryTimeoutMs > 0)) throw new ConfigError('postgresLock: queryTimeoutMs must be positive');
  checkPoll('postgresLock', poll);
  const held = new Set<LockHandle>();
  // The server's deadline trails ours by a little: normally this process ends the session itself, and
  // the server only steps in for a holder that is paused or cut off.
  const ms = (value: number) => String(Math.max(1, Math.ceil(value)) + 50);

  async function checkout(): Promise<PoolClient> {
    const pending = pool.connect();
    try {
      return await bounded('postgres lock connect', queryTimeoutMs, () => pending);
    } catch (error) {
      // A connection that arrives after we gave up goes straight back.
      pending.then(
        (client) => client.release(),
        () => {},
      );
      throw error;
    }
  }

  async function attempt(name: string, lock: ReturnType<typeof lockId>, ttlMs: number) {
    const client = await checkout();
    const sent = Date.now();
    try {
      await bounded('postgres lock acquire', queryTimeoutMs, () => client.query('BEGIN'));
      const { rows } = await bounded('postgres lock acquire', queryTimeoutMs, () =>
        client.query<{ locked: boolean }>(TRY, [ms(ttlMs), lock.id]),
      );
      if (rows[0]?.locked) return handle(name, lock, client, sent + ttlMs);
      await bounded('postgres lock acquire', queryTimeoutMs, () => client.query('ROLLBACK'));
      client.release();
      return undefined;
    } catch (error) {
      // In an unknown state (maybe even holding the lock): end the session, which frees everything.
      client.release(true);
      throw error;
    }
  }

  function handle(name: string, lock: ReturnType<typeof lockId>, client: PoolClient, expiresAt: number) {
    let live = true;
    const end = (healthy: boolean) => {
      if (!live) return;
      live = false;
      held.delete(self);
      clearTimeout(timer);
      if (healthy) client.off('error', onError);
      client.release(!healthy);
    };
    // A checked-out client has no error listener of the pool's: without ours, a session the server
    // ends (TTL, restart, pg_terminate_backend) would crash the process.
    const onError = () => end(false);
    client.on('error', onError);
    // Past the TTL the session is ended, which frees the lock. Timers may fire early: re-arm then.
    const arm = (): NodeJS.Timeout =>
      setTimeout(
        () => {
          if (Date.now() < expiresAt) timer = arm();
          else end(false);
        },
        clampTimer(expiresAt - Date.now()),
      ).unref();
    let timer = arm();
    const check = async (deadlineMs: number) => {
      try {
        const { rows } = await bounded('postgres lock check', queryTimeoutMs, () =>
          client.query<{ held: boolean }>(CHECK, [ms(deadlineMs), lock.high, lock.low]),
        );
        if (rows[0]?.held === true) return true;
      } catch {
        // Unknown state: give the lock up for certain.
      }
      end(false);
      return false;
    };
    const self: LockHandle = {
      key: name,
      owner: randomUUID(),
      isHeld: async () => live && Date.now() < expiresAt && (await check(expiresAt - Date.now())),
      async extend(extra: number) {
        const sent = Date.now();
        if (!live || sent >= expiresAt || !(await check(extra))) return false;
        expiresAt = sent + extra;
        clearTimeout(timer);
        timer = arm();
        return true;
      },
      async release() {
        if (!live) return;
        try {
          await bounded('postgres lock release', queryTimeoutMs, () => client.query('ROLLBACK'));
          end(true);
        } catch {
          end(false);
        }
      },
    };
    held.add(self);
    return self;
  }

  return {
    shared: true,
    async acquire(name: string, acquire: AcquireOptions) {
      checkAcquire('postgresLock', acquire);
      const { ttlMs, waitMs, signal } = acquire;
      const lock = lockId(prefix + name);
      const giveUpAt = Date.now() + waitMs;
      for (let round = 0; ; round++) {
        const handle = await attempt(name, lock, ttlMs);
        if (handle) return handle;
        const remaining = giveUpAt - Date.now();
        if (remaining <= 0 || signal?.aborted) return undefined;
        await sleep(Math.min(remaining, backoff(round, poll)), signal);
        if (signal?.aborted) return undefined;
      }
    },
    /** Releases every lock this instance holds; the pool stays open (it is the caller's). */
    async close() {
      await Promise.all([...held].map((handle) => handle.release()));
    },
  };
}
