/** PostgreSQL lease rows: the database clock decides, generations fence, nothing is held between statements. */
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/index.js';
import { postgresLeaseLock, postgresTokenStore } from '../../stores/index.js';
import { needs, POSTGRES_URL } from '../helpers/services.js';
import { sleep, unique } from './conformance.js';
import { holdInChild } from './holder.js';

const postgres = await needs('postgres');

describe.runIf(postgres)('postgresLeaseLock', () => {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 10 });
  afterAll(() => pool.end());
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const row = async (name: string) =>
    (
      await pool.query<{ owner: string; generation: string; live: boolean }>(
        'SELECT owner, generation, expires_at > clock_timestamp() AS live FROM sluice_locks WHERE name = $1',
        [name],
      )
    ).rows[0];

  it('the database clock decides: a holder whose own clock stands still cannot check, extend or release past its lease', async () => {
    const namespace = unique('lease');
    const lock = postgresLeaseLock(pool, { namespace });
    const first = await lock.acquire('clock', { ttlMs: 300, waitMs: 0 });
    expect(first).toBeDefined();
    expect(await row(`${namespace}:clock`)).toMatchObject({ generation: '1', live: true });
    // From here on this process's clock reads the moment of acquisition: locally the lease never ends.
    const frozen = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(frozen);
    await sleep(400);
    expect(await first!.isHeld()).toBe(false);
    expect(await first!.extend!(5000)).toBe(false);
    const second = await postgresLeaseLock(pool, { namespace }).acquire('clock', { ttlMs: 5000, waitMs: 0 });
    expect(second).toBeDefined();
    expect(await row(`${namespace}:clock`)).toMatchObject({ generation: '2', live: true, owner: second!.owner });
    // The stale handle's release matches its own generation only: the new lease stands.
    await first!.release();
    expect(await row(`${namespace}:clock`)).toMatchObject({ generation: '2', live: true });
    expect(await second!.isHeld()).toBe(true);
    await second!.release();
    expect(await row(`${namespace}:clock`)).toMatchObject({ generation: '2', live: false });
  });

  it('generations only grow: release keeps the row, the next holder gets the next number', async () => {
    const namespace = unique('lease');
    const lock = postgresLeaseLock(pool, { namespace });
    for (let turn = 1; turn <= 5; turn++) {
      const handle = await lock.acquire('turns', { ttlMs: 5000, waitMs: 0 });
      expect((await row(`${namespace}:turns`))?.generation).toBe(String(turn));
      await handle!.release();
    }
  });

  it('a holder that dies keeps the lease to its end (no session to end it), not longer', async () => {
    const namespace = unique('lease');
    const ttlMs = 700;
    const holder = await holdInChild({
      kind: 'postgres-lease',
      url: POSTGRES_URL,
      name: 'dead',
      ttlMs,
      prefix: namespace,
    });
    const held = Date.now();
    await holder.kill();
    const lock = postgresLeaseLock(pool, { namespace });
    expect(await lock.acquire('dead', { ttlMs: 5000, waitMs: 0 })).toBeUndefined();
    const next = await lock.acquire('dead', { ttlMs: 5000, waitMs: 5000 });
    expect(next).toBeDefined();
    expect(Date.now() - held).toBeGreaterThanOrEqual(ttlMs - 50);
    expect(Date.now() - held).toBeLessThan(ttlMs + 700);
    await next!.release();
  });

  it('holds no connection between statements: 20 leases held at once through a pool of 1', async () => {
    const one = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    const lock = postgresLeaseLock(one, { namespace: unique('lease') });
    const handles = await Promise.all(
      Array.from({ length: 20 }, (_, i) => lock.acquire(`k${i}`, { ttlMs: 5000, waitMs: 0 })),
    );
    expect(handles.every((handle) => handle !== undefined)).toBe(true);
    expect(await Promise.all(handles.map((handle) => handle!.isHeld()))).toEqual(Array(20).fill(true));
    await lock.close!();
    expect(await Promise.all(handles.map((handle) => handle!.isHeld()))).toEqual(Array(20).fill(false));
    await one.end();
  });

  it('refuses bad options at construction', () => {
    expect(() => postgresLeaseLock(pool, { table: 'x; drop' })).toThrow(ConfigError);
    expect(() => postgresLeaseLock(pool, { queryTimeoutMs: 0 })).toThrow(ConfigError);
    expect(() => postgresLeaseLock({} as pg.Pool)).toThrow(ConfigError);
    expect(() => postgresLeaseLock(pool, { tabel: 'x' } as never)).toThrow(/table/);
    expect(() => postgresTokenStore(POSTGRES_URL, { lock: 'session' as never })).toThrow(ConfigError);
    expect(() => postgresTokenStore(POSTGRES_URL, { lockTable: 'a-b' })).toThrow(ConfigError);
    expect(() => postgresTokenStore(POSTGRES_URL, { listenURL: 'http://x' })).toThrow(ConfigError);
  });
});
