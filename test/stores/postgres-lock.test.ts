/** PostgreSQL advisory locks: what the conformance suite cannot see from outside the session. */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, StoreUnavailableError } from '../../src/index.js';
import { postgresLock } from '../../stores/index.js';
import { needs, POSTGRES_URL } from '../helpers/services.js';
import { sleep, unique } from './conformance.js';
import { holdInChild } from './holder.js';

const postgres = await needs('postgres');
const prefix = unique('pglock');
/** Our connections carry this name, so that locks held by test files running alongside are not counted. */
const application_name = prefix.slice(0, 60);

describe.runIf(postgres)('postgresLock', () => {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 10, application_name });
  const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
  // As pg asks of every pool: a session the server ends must not crash the test process.
  pool.on('error', () => {});
  afterAll(async () => {
    await Promise.all([pool.end(), admin.end()]);
  });
  /** Our backends holding an advisory lock right now, with their state. */
  const holders = async () =>
    (
      await admin.query<{ pid: number; state: string }>(
        `SELECT a.pid, a.state FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1`,
        [application_name],
      )
    ).rows;

  it('holds the lock in an open transaction on its own connection, and gives the connection back clean', async () => {
    const small = new pg.Pool({ connectionString: POSTGRES_URL, max: 1, application_name });
    const lock = postgresLock(small, { prefix });
    expect(await holders()).toEqual([]);
    const handle = await lock.acquire('clean', { ttlMs: 5000, waitMs: 0 });
    const mine = await holders();
    expect(mine).toHaveLength(1);
    expect(mine[0]!.state).toBe('idle in transaction');
    await handle!.release();
    // The one pooled connection came back with no lock and no open transaction.
    // (Inside a transaction begun earlier, now() would be that transaction's start, not this statement's.)
    const { rows } = await small.query<{ locks: string; fresh: boolean }>(
      `SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
              now() = statement_timestamp() AS fresh`,
    );
    expect(rows[0]).toEqual({ locks: '0', fresh: true });
    const again = await lock.acquire('clean', { ttlMs: 5000, waitMs: 0 });
    expect(again).toBeDefined();
    await again!.release();
    await small.end();
  });

  it('1,000 acquire/release cycles through a pool of 2 leave no advisory lock behind', async () => {
    const small = new pg.Pool({ connectionString: POSTGRES_URL, max: 2, application_name });
    small.on('error', () => {});
    const lock = postgresLock(small, { prefix });
    let acquired = 0;
    // Two at a time on two names, so that connections are reused while the other one holds.
    await Promise.all(
      [0, 1].map(async (lane) => {
        for (let i = 0; i < 500; i++) {
          const handle = await lock.acquire(`cycle-${lane}`, { ttlMs: 5000, waitMs: 1000 });
          if (handle) acquired++;
          await handle?.release();
        }
      }),
    );
    expect(acquired).toBe(1000);
    expect(await holders()).toEqual([]);
    await small.end();
  }, 60_000);

  it('ends the holding session when the TTL passes', async () => {
    const lock = postgresLock(pool, { prefix });
    const handle = await lock.acquire('ttl-session', { ttlMs: 200, waitMs: 0 });
    const [mine, ...more] = await holders();
    expect(more).toEqual([]);
    expect(mine).toBeDefined();
    await sleep(400);
    const alive = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [mine!.pid]);
    expect(alive.rowCount).toBe(0);
    expect(await handle!.isHeld()).toBe(false);
  });

  it('a session ended by the server does not crash the process; isHeld turns false and others get in', async () => {
    const lock = postgresLock(pool, { prefix });
    const handle = await lock.acquire('terminated', { ttlMs: 30_000, waitMs: 0 });
    const [mine] = await holders();
    await admin.query('SELECT pg_terminate_backend($1)', [mine!.pid]);
    await sleep(100);
    expect(await handle!.isHeld()).toBe(false);
    expect(await handle!.extend!(30_000)).toBe(false);
    const next = await lock.acquire('terminated', { ttlMs: 5000, waitMs: 1000 });
    expect(next).toBeDefined();
    await next!.release();
    await handle!.release();
  });

  it('a holder process killed with SIGKILL frees the lock at once, long before its TTL', async () => {
    const holder = await holdInChild({ kind: 'postgres', url: POSTGRES_URL, name: 'killed', ttlMs: 60_000, prefix });
    const lock = postgresLock(pool, { prefix });
    expect(await lock.acquire('killed', { ttlMs: 5000, waitMs: 0 })).toBeUndefined();
    const killed = Date.now();
    await holder.kill();
    const next = await lock.acquire('killed', { ttlMs: 5000, waitMs: 5000 });
    expect(next).toBeDefined();
    expect(Date.now() - killed).toBeLessThan(1000);
    await next!.release();
  });

  it('a holder process that hangs (SIGSTOP) loses the lock at its TTL: the server ends its session', async () => {
    const ttlMs = 800;
    const holder = await holdInChild({ kind: 'postgres', url: POSTGRES_URL, name: 'paused', ttlMs, prefix });
    const held = Date.now();
    holder.child.kill('SIGSTOP');
    try {
      const lock = postgresLock(pool, { prefix });
      const next = await lock.acquire('paused', { ttlMs: 5000, waitMs: 5000 });
      expect(next).toBeDefined();
      // Not before the TTL, and within the TTL plus a poll interval and some scheduling slack.
      expect(Date.now() - held).toBeGreaterThanOrEqual(ttlMs - 50);
      expect(Date.now() - held).toBeLessThan(ttlMs + 700);
      await next!.release();
    } finally {
      await holder.kill();
    }
  });

  it('keeps prefixes apart: one name under two prefixes is two locks', async () => {
    const [one, two] = [postgresLock(pool, { prefix: `${prefix}a:` }), postgresLock(pool, { prefix: `${prefix}b:` })];
    const a = await one.acquire('same', { ttlMs: 5000, waitMs: 0 });
    const b = await two.acquire('same', { ttlMs: 5000, waitMs: 0 });
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    await Promise.all([a!.release(), b!.release()]);
  });

  it('close() releases what this lock holds, and leaves the pool open', async () => {
    const lock = postgresLock(pool, { prefix });
    const handle = await lock.acquire('closed', { ttlMs: 30_000, waitMs: 0 });
    await lock.close?.();
    expect(await handle!.isHeld()).toBe(false);
    const other = await postgresLock(pool, { prefix }).acquire('closed', { ttlMs: 5000, waitMs: 0 });
    expect(other).toBeDefined();
    await other!.release();
  });
});

describe('postgresLock without a server', () => {
  it('fails with StoreUnavailableError within its query timeout', async () => {
    const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/test' });
    pool.on('error', () => {});
    const lock = postgresLock(pool, { queryTimeoutMs: 300 });
    const started = Date.now();
    const error = await lock.acquire('down', { ttlMs: 1000, waitMs: 1000 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(/^postgres lock connect/);
    expect(Date.now() - started).toBeLessThan(1000);
    await pool.end();
  });

  it('rejects options that make no sense', () => {
    const pool = new pg.Pool();
    expect(() => postgresLock(pool, { poll: [0, 10] })).toThrow(ConfigError);
    expect(() => postgresLock(pool, { queryTimeoutMs: 0 })).toThrow(ConfigError);
    expect(() => postgresLock({} as pg.Pool)).toThrow(ConfigError);
    return expect(postgresLock(pool).acquire('x', { ttlMs: 0, waitMs: 0 })).rejects.toThrow(ConfigError);
  });
});
