/**
 * Many processes, one token: 8 forked workers x 50 concurrent loops sharing a Redis (or PostgreSQL)
 * store, against a real local auth server and API. The servers count; the tests assert.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startApiServer, startAuthServer } from '../../testing/index.js';
import { startFleet } from '../helpers/fleet.js';
import type { FleetJob, FleetReport } from '../helpers/fleet-worker.js';
import { hasPgBouncer, startPgBouncer } from '../helpers/pgbouncer.js';
import { startRedisCluster, startRedisSentinel } from '../helpers/redis-topology.js';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const POSTGRES = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function revocationRun(
  engine: 'redis' | 'postgres' | 'local',
  storeURL: string,
  storeOptions: Record<string, unknown> = {},
  more: Partial<FleetJob> = {},
) {
  const auth = await startAuthServer({ refreshTokens: true, reuseDetection: true });
  const api = await startApiServer({ auth });
  closers.push(auth.close, api.close);
  const namespace = `fleet-${engine}-${process.pid}-${Date.now()}`;
  const jobs: FleetJob[] = Array.from({ length: 8 }, (_, id) => ({
    id,
    apiURL: api.url,
    tokenURL: auth.tokenURL,
    engine,
    storeURL,
    storeOptions,
    namespace,
    loops: 50,
    maxSeconds: 40,
    grant: 'password',
    ...more,
  }));
  const fleet = startFleet(jobs);
  closers.push(async () => {
    for (const worker of fleet.workers) if (worker.exitCode === null) worker.kill('SIGKILL');
  });
  await fleet.ready;
  const tokensBefore = auth.counts.token;
  await sleep(300);
  auth.revokeAll();
  await sleep(1500);
  const reports = await fleet.stop();
  return { auth, api, reports, tokensBefore, namespace };
}

/** Each worker's token events and store warnings: what to read when a token count is off. */
function tokenSteps(reports: FleetReport[]): string {
  return JSON.stringify(reports.map((report) => ({ id: report.id, warnings: report.warnings, ...report.events })));
}

/** 8 reports, no error or failure, 1 token before the revocation and exactly 1 after it, no reuse. */
function expectOneTokenPerRevocation({ auth, api, reports, tokensBefore }: Awaited<ReturnType<typeof revocationRun>>) {
  expect(reports).toHaveLength(8);
  expect(reports.flatMap((report) => report.errors)).toEqual([]);
  expect(reports.reduce((sum, report) => sum + report.failed, 0)).toBe(0);
  expect(tokensBefore, tokenSteps(reports)).toBe(1);
  expect(auth.counts.token - tokensBefore, tokenSteps(reports)).toBe(1);
  expect(auth.counts.reuse).toBe(0);
  expect(api.counts.unauthorized).toBeGreaterThan(0);
}

describe('one token across processes', () => {
  it('Redis: 8 processes x 50 loops, a revocation mid-run -> exactly 1 token request, 0 failures, 0 reuse', async () => {
    expectOneTokenPerRevocation(await revocationRun('redis', REDIS));
  }, 60_000);

  it('Redis Cluster (3 masters): the same fleet and revocation -> exactly 1 token request, 0 failures, 0 reuse', async () => {
    const cluster = await startRedisCluster();
    closers.push(cluster.stop);
    expectOneTokenPerRevocation(await revocationRun('redis', '', {}, { redisTarget: { cluster: [cluster.url] } }));
  }, 60_000);

  it('Redis Sentinel (master + replica, 3 sentinels): the same fleet -> exactly 1 token request, 0 failures, 0 reuse', async () => {
    const sentinel = await startRedisSentinel();
    closers.push(sentinel.stop);
    const sentinels = sentinel.sentinels.map(({ host, port }) => `redis://${host}:${port}`);
    expectOneTokenPerRevocation(
      await revocationRun('redis', '', {}, { redisTarget: { sentinels, name: sentinel.name } }),
    );
  }, 60_000);

  it('Redis Sentinel failover mid-run: 0 failed requests, and a revocation after it still costs exactly 1 token request', async () => {
    const sentinel = await startRedisSentinel();
    closers.push(sentinel.stop);
    const sentinels = sentinel.sentinels.map(({ host, port }) => `redis://${host}:${port}`);
    const auth = await startAuthServer({ refreshTokens: true, reuseDetection: true });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const fleet = startFleet(
      Array.from({ length: 8 }, (_, id) => ({
        id,
        apiURL: api.url,
        tokenURL: auth.tokenURL,
        engine: 'redis' as const,
        storeURL: '',
        redisTarget: { sentinels, name: sentinel.name },
        namespace: `failover-${process.pid}-${Date.now()}`,
        loops: 20,
        maxSeconds: 40,
        grant: 'password' as const,
      })),
    );
    closers.push(async () => {
      for (const worker of fleet.workers) if (worker.exitCode === null) worker.kill('SIGKILL');
    });
    await fleet.ready;
    const tokensBefore = auth.counts.token;
    const promoted = await sentinel.failover();
    expect(promoted).toEqual(sentinel.replica);
    // The clients follow the new master by themselves (node-redis listens to the sentinels).
    await sleep(1500);
    const beforeRevocation = auth.counts.token;
    auth.revokeAll();
    await sleep(1500);
    const reports = await fleet.stop();
    expect(reports).toHaveLength(8);
    expect(reports.flatMap((report) => report.errors)).toEqual([]);
    expect(reports.reduce((sum, report) => sum + report.failed, 0)).toBe(0);
    expect(tokensBefore, tokenSteps(reports)).toBe(1);
    // The entry replicated before the failover: nobody fetched a token because of it.
    expect(beforeRevocation).toBe(1);
    expect(auth.counts.token - beforeRevocation).toBe(1);
    expect(auth.counts.reuse).toBe(0);
  }, 90_000);

  it('PostgreSQL: the same fleet and revocation -> exactly 1 token request, 0 failures, 0 reuse', async () => {
    expectOneTokenPerRevocation(await revocationRun('postgres', POSTGRES));
  }, 60_000);

  it('PostgreSQL through PgBouncer (transaction pooling), lease-row lock: the same fleet -> 1 token request, 0 failures, 0 reuse', async (context) => {
    if (!hasPgBouncer()) return context.skip();
    const bouncer = await startPgBouncer(4);
    closers.push(bouncer.stop);
    // LISTEN needs a session of its own: it goes to PostgreSQL directly; everything else through PgBouncer.
    const run = await revocationRun('postgres', bouncer.url, { lock: 'lease', listenURL: POSTGRES });
    expectOneTokenPerRevocation(run);
    // The turns were taken on lease rows: one per refresh at least (the first token, the revocation).
    const pool = new pg.Pool({ connectionString: POSTGRES });
    closers.push(() => pool.end());
    const { rows } = await pool.query('SELECT generation FROM sluice_locks WHERE name LIKE $1', [`${run.namespace}:%`]);
    expect(rows.length).toBeGreaterThan(0);
    expect(Math.max(...rows.map((row) => Number(row.generation)))).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('local files, no server: the same fleet and revocation -> exactly 1 token request, 0 failures, 0 reuse', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-fleet-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    expectOneTokenPerRevocation(await revocationRun('local', dir));
  }, 60_000);
});
