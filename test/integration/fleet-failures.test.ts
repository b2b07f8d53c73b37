/**
 * What an operator of a fleet fears: a refresher killed mid-refresh, Redis going away, tokens that
 * expire every few seconds for a long while. Real processes, real servers, counted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startApiServer, startAuthServer } from '../../testing/index.js';
import { startFleet } from '../helpers/fleet.js';
import type { FleetJob } from '../helpers/fleet-worker.js';
import { startPrivateRedis } from '../helpers/redis-server.js';
import { needs, REDIS_URL } from '../helpers/services.js';

const redis = await needs('redis');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function jobs(count: number, base: Omit<FleetJob, 'id'>): FleetJob[] {
  return Array.from({ length: count }, (_, id) => ({ ...base, id }));
}

function guard(fleet: ReturnType<typeof startFleet>) {
  closers.push(async () => {
    for (const worker of fleet.workers) if (worker.exitCode === null) worker.kill('SIGKILL');
  });
}

describe.runIf(redis)('fleet failures (Redis)', () => {
  it('a refresher killed mid-refresh is taken over within the lock TTL plus one poll interval', async () => {
    const lockTtl = 1500;
    let armed = false;
    let heldAt = 0;
    let takeoverAt = 0;
    let holder: string | null = null;
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let onHeld!: (worker: string | null) => void;
    const held = new Promise<string | null>((resolve) => {
      onHeld = resolve;
    });
    const auth = await startAuthServer({
      async onTokenRequest(form) {
        if (!armed) return;
        if (!heldAt) {
          heldAt = Date.now();
          holder = form.get('worker');
          onHeld(holder);
          await Promise.race([released, sleep(15_000)]);
        } else if (!takeoverAt) {
          takeoverAt = Date.now();
        }
      },
    });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const fleet = startFleet(
      jobs(4, {
        apiURL: api.url,
        tokenURL: auth.tokenURL,
        engine: 'redis',
        storeURL: REDIS_URL,
        namespace: `kill-${process.pid}-${Date.now()}`,
        loops: 20,
        maxSeconds: 40,
        grant: 'client_credentials',
        lockTtl,
        lockWait: 15_000,
      }),
    );
    guard(fleet);
    await fleet.ready;
    expect(auth.counts.token).toBe(1);
    armed = true;
    auth.revokeAll();
    const victim = Number(await held);
    const killedAt = Date.now();
    fleet.kill(victim);
    release();
    // Wait for the takeover and for the survivors to run on the new token for a while.
    for (let waited = 0; !takeoverAt && waited < 5000; waited += 50) await sleep(50);
    await sleep(800);
    const reports = await fleet.stop();
    const takeover = takeoverAt - killedAt;
    console.log(`takeover after SIGKILL: ${takeover} ms (lock TTL ${lockTtl} ms)`);
    expect(takeoverAt).toBeGreaterThan(0);
    expect(takeover).toBeLessThanOrEqual(lockTtl + 200);
    expect(reports).toHaveLength(3);
    expect(reports.every((report) => report.id !== victim)).toBe(true);
    expect(reports.flatMap((report) => report.errors)).toEqual([]);
    expect(reports.reduce((sum, report) => sum + report.ok, 0)).toBeGreaterThan(100);
    // One held (the victim's), one completed takeover: no one else asked.
    expect(auth.counts.received).toBe(3);
  }, 60_000);

  it('Redis stopped mid-run: 0 failures, one warning per process, tokens shared again after restart', async () => {
    const privateRedis = await startPrivateRedis();
    closers.push(privateRedis.stop);
    const auth = await startAuthServer();
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const fleet = startFleet(
      jobs(4, {
        apiURL: api.url,
        tokenURL: auth.tokenURL,
        engine: 'redis',
        storeURL: privateRedis.url,
        namespace: 'outage',
        loops: 20,
        maxSeconds: 40,
        grant: 'client_credentials',
      }),
    );
    guard(fleet);
    await fleet.ready;
    expect(auth.counts.token).toBe(1);
    await privateRedis.stop();
    await sleep(500);
    // While Redis is down, a revocation: each process re-authenticates on its own (client credentials).
    auth.revokeAll();
    await sleep(1500);
    const duringOutage = auth.counts.token - 1;
    await privateRedis.start();
    await sleep(3000);
    const beforeSecondRevocation = auth.counts.token;
    auth.revokeAll();
    await sleep(1500);
    const reports = await fleet.stop();
    expect(reports).toHaveLength(4);
    expect(reports.flatMap((report) => report.errors)).toEqual([]);
    expect(duringOutage).toBeGreaterThanOrEqual(1);
    expect(duringOutage).toBeLessThanOrEqual(4);
    for (const report of reports) {
      expect(report.warnings, `worker ${report.id} warnings`).toBe(1);
      expect(report.events['store-recovered'], `worker ${report.id} recovered`).toBeGreaterThanOrEqual(1);
    }
    // Shared again: one revocation, one token request for the whole fleet.
    expect(auth.counts.token - beforeSecondRevocation).toBe(1);
  }, 60_000);

  it('a 20 s steady run with 3 s tokens and 4 processes: one token request per expiry, 0 failures', async () => {
    const lifetime = 3;
    const auth = await startAuthServer({ lifetime });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const started = Date.now();
    const fleet = startFleet(
      jobs(4, {
        apiURL: api.url,
        tokenURL: auth.tokenURL,
        engine: 'redis',
        storeURL: REDIS_URL,
        namespace: `steady-${process.pid}-${Date.now()}`,
        loops: 10,
        maxSeconds: 40,
        grant: 'client_credentials',
      }),
    );
    guard(fleet);
    await fleet.ready;
    await sleep(20_000);
    const reports = await fleet.stop();
    const seconds = (Date.now() - started) / 1000;
    expect(reports.flatMap((report) => report.errors)).toEqual([]);
    expect(api.counts.unauthorized).toBe(0);
    // A token is replaced 2.1-2.4 s into its 3 s life (20% + up to 10% before expiry).
    const tokens = auth.counts.token;
    console.log(`steady run: ${tokens} token requests in ${seconds.toFixed(1)} s`);
    expect(tokens).toBeGreaterThanOrEqual(Math.floor(seconds / lifetime));
    expect(tokens).toBeLessThanOrEqual(Math.ceil(seconds / (lifetime * 0.7)) + 1);
    // Every token request was the one refresh of its generation: stored once, adopted by the rest.
    const stored = reports.reduce((sum, report) => sum + (report.events.stored ?? 0), 0);
    expect(stored).toBe(tokens);
  }, 60_000);
});
