import { randomUUID } from 'node:crypto';
import { ConfigError } from '../src/errors.js';
import { checkNames, own } from '../src/own.js';
import type { AcquireOptions, Lock, LockHandle } from '../src/store.js';
import { backoff, bounded, checkAcquire, checkPoll, sleep } from './timeout.js';

/** What the lease lock uses of a pg `Pool`: single statements, no connection held between them. */
export interface PgQueryable {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

export interface PostgresLeaseLockOptions {
  /** The table of leases, created when missing. @default 'sluice_locks' */
  table?: string | undefined;
  /** The namespace of the token store this lock goes with: lease names are `<namespace>:<name>`. @default 'sluice' */
  namespace?: string | undefined;
  /** Longest wait for one query, in ms. @default 2000 */
  queryTimeoutMs?: number | undefined;
  /** First and longest pause between attempts while waiting, in ms. @default [25, 200] */
  poll?: readonly [number, number] | undefined;
}

const raced = (error: unknown) => ['23505', '42P07'].includes(String((error as { code?: unknown })?.code));

/**
 * A lease row per lock (`name`, `owner`, `expires_at`, `generation`), every decision taken by one
 * statement on the database's clock: a row whose lease has run out is taken over by an upsert that
 * bumps its generation, and extend, check and release all match owner and generation and a lease
 * still running. Nothing holds a connection or a session between statements, so it works through
 * PgBouncer in transaction (or statement) pooling, where session and transaction advisory locks
 * would pin or strand a pooled backend. A holder that is paused or cut off cannot extend once its
 * lease has run out, whatever its own clock says.
 */
export function postgresLeaseLock(pool: PgQueryable, given: PostgresLeaseLockOptions = {}): Lock {
  const options = own(given);
  checkNames('postgresLeaseLock', options, new Set(['table', 'namespace', 'queryTimeoutMs', 'poll']));
  const { table = 'sluice_locks', namespace = 'sluice', queryTimeoutMs = 2000, poll = [25, 200] } = options;
  if (!pool || typeof pool.query !== 'function') throw new ConfigError('postgresLeaseLock needs a pg Pool');
  if (!/^[A-Za-z_]\w*$/.test(table)) throw new ConfigError('postgresLeaseLock: table must be a plain identifier');
  if (!(queryTimeoutMs > 0)) throw new ConfigError('postgresLeaseLock: queryTimeoutMs must be positive');
  checkPoll('postgresLeaseLock', poll);
  const name = `public.${table}`;
  const TAKE = `INSERT INTO ${name} AS lease (name, owner, expires_at, generation)
    VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond', 1)
    ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
      generation = lease.generation + 1
    WHERE lease.expires_at <= clock_timestamp()
    RETURNING generation`;
  const MINE = 'name = $1 AND owner = $2 AND generation = $3 AND expires_at > clock_timestamp()';
  const EXTEND = `UPDATE ${name} SET expires_at = clock_timestamp() + $4 * interval '1 millisecond' WHERE ${MINE} RETURNING 1`;
  const CHECK = `SELECT 1 FROM ${name} WHERE ${MINE}`;
  // The row stays (ended, not deleted): its generation only ever grows.
  const RELEASE = `UPDATE ${name} SET expires_at = clock_timestamp() WHERE ${MINE}`;

  let created: Promise<unknown> | undefined;
  const ensureTable = () =>
    (created ??= pool
      .query(
        `CREATE TABLE IF NOT EXISTS ${name} (name TEXT PRIMARY KEY, owner TEXT NOT NULL,
          expires_at TIMESTAMPTZ NOT NULL, generation BIGINT NOT NULL)`,
      )
      .catch((error: unknown) => {
        created = undefined;
        if (!raced(error)) throw error;
      }));
  const run = <R>(operation: string, text: string, values: unknown[]) =>
    bounded(`postgres lease ${operation}`, queryTimeoutMs, async () => {
      await ensureTable();
      return (await pool.query<R>(text, values)).rows;
    });

  const held = new Set<LockHandle>();
  function handle(key: string, lease: string, owner: string, generation: string, expiresAt: number): LockHandle {
    const mine = [lease, owner, generation];
    const self: LockHandle = {
      key,
      owner,
      async isHeld() {
        if (Date.now() >= expiresAt) return false;
        return (await run('check', CHECK, mine).catch(() => [])).length === 1;
      },
      async extend(ms: number) {
        const sent = Date.now();
        if (sent >= expiresAt) return false;
        const rows = await run('extend', EXTEND, [...mine, Math.ceil(ms)]).catch(() => []);
        if (rows.length !== 1) return false;
        expiresAt = sent + ms;
        return true;
      },
      async release() {
        held.delete(self);
        expiresAt = 0;
        await run('release', RELEASE, mine).catch(() => {});
      },
    };
    held.add(self);
    return self;
  }

  return {
    shared: true,
    namespace,
    async acquire(key: string, acquire: AcquireOptions) {
      checkAcquire('postgresLeaseLock', acquire);
      const { ttlMs, waitMs, signal } = acquire;
      const lease = `${namespace}:${key}`;
      const owner = randomUUID();
      const giveUpAt = Date.now() + waitMs;
      for (let round = 0; ; round++) {
        // Local expiry counts from before the statement left: it never outlives the database's.
        const sent = Date.now();
        let rows: { generation: string }[];
        try {
          rows = await run<{ generation: string }>('acquire', TAKE, [lease, owner, Math.ceil(ttlMs)]);
        } catch (error) {
          // The upsert may have landed after all: end that lease rather than leave it until it runs out.
          void pool
            .query(`UPDATE ${name} SET expires_at = clock_timestamp() WHERE name = $1 AND owner = $2`, [lease, owner])
            .catch(() => {});
          throw error;
        }
        const generation = rows[0]?.generation;
        if (generation !== undefined) return handle(key, lease, owner, String(generation), sent + ttlMs);
        const remaining = giveUpAt - Date.now();
        if (remaining <= 0 || signal?.aborted) return undefined;
        await sleep(Math.min(remaining, backoff(round, poll)), signal);
        if (signal?.aborted) return undefined;
      }
    },
    /** Ends every lease this instance holds; the pool stays open (it is the caller's). */
    async close() {
      await Promise.all([...held].map((lease) => lease.release()));
    },
  };
}
