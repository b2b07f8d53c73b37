/**
 * Exactly one refresh whatever fails, counted on a rotating token server with reuse detection: a
 * holder killed (SIGKILL) at each point of a refresh, or paused (SIGSTOP) past its lease. Real
 * processes sharing a real Redis.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startApiServer, startAuthServer } from '../../testing/index.js';
import { startFleet } from '../helpers/fleet.js';
import type { FleetJob } from '../helpers/fleet-worker.js';
import { needs, REDIS_URL } from '../helpers/services.js';
import { expectNoReuse } from '../helpers/token-server.js';

const redis = await needs('redis');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function fleetWith(fault: FleetJob['fault'], options: { victimDelay?: number } = {}) {
  // Refresh requests from the victim are held a moment, so that "in flight" is a real window.
  let victimArmed = false;
  const auth = await startAuthServer({
    lifetime: 4,
    refreshTokens: true,
    async onTokenRequest(form) {
      if (options.victimDelay && form.get('grant_type') === 'refresh_token' && victimArmed) {
        victimArmed = false;
        await sleep(options.victimDelay);
      }
    },
  });
  const api = await startApiServer({ auth });
  closers.push(auth.close, api.close);
  const base: Omit<FleetJob, 'id'> = {
    apiURL: api.url,
    tokenURL: auth.tokenURL,
    engine: 'redis',
    storeURL: REDIS_URL,
    namespace: `faults-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`,
    loops: 5,
    maxSeconds: 40,
    grant: 'password',
    lockTtl: 1000,
    lockWait: 15_000,
  };
  const fleet = startFleet([0, 1, 2].map((id) => ({ ...base, id, ...(id === 0 && fault ? { fault } : {}) })));
  closers.push(async () => {
    for (const worker of fleet.workers) if (worker.exitCode === null) worker.kill('SIGKILL');
  });
  await fleet.ready;
  return {
    auth,
    fleet,
    armVictim() {
      victimArmed = true;
      fleet.kick(0);
    },
  };
}

describe.runIf(redis)('a refresh holder killed or paused at the wrong moment (3 processes, Redis)', () => {
  const points = [
    { name: 'before the call', at: 'requesting', afterMs: 0, delay: 0 },
    { name: 'in flight', at: 'requesting', afterMs: 150, delay: 600 },
    { name: 'before the write', at: 'received', afterMs: 0, delay: 0 },
    { name: 'before the release', at: 'stored', afterMs: 0, delay: 0 },
  ];
  for (const point of points) {
    it(`SIGKILL ${point.name}: the survivors go on, no refresh token is presented twice`, async () => {
      const { auth, fleet, armVictim } = await fleetWith(
        { at: point.at, signal: 'SIGKILL', ...(point.afterMs ? { afterMs: point.afterMs } : {}) },
        { victimDelay: point.delay },
      );
      const startTokens = auth.counts.token;
      armVictim();
      const victim = fleet.workers[0]!;
      await new Promise<void>((resolve) => {
        if (victim.exitCode !== null || victim.signalCode !== null) resolve();
        else victim.once('exit', () => resolve());
      });
      // Two more token lifetimes: the survivors refresh at least twice on their own.
      await sleep(8000);
      const reports = await fleet.stop();
      console.log(
        `SIGKILL ${point.name}: token requests ${auth.counts.token - startTokens} (refresh ${auth.counts.refresh}, ` +
          `password ${auth.counts.token - auth.counts.refresh}), reuse ${auth.counts.reuse}, ` +
          `lost ${reports.reduce((sum, report) => sum + (report.events['refresh-token-lost'] ?? 0), 0)}`,
      );
      expect(victim.signalCode).toBe('SIGKILL');
      expect(reports).toHaveLength(2);
      expect(reports.flatMap((report) => report.errors)).toEqual([]);
      expectNoReuse(auth);
      // The survivors refreshed after the kill (a lost or killed holder does not stop the fleet) ...
      expect(auth.counts.token - startTokens).toBeGreaterThanOrEqual(2);
      // ... and never raced: at most one token request per token lifetime, plus one re-authentication
      // where the victim took a presented refresh token with it.
      expect(auth.counts.token - startTokens).toBeLessThanOrEqual(5);
    }, 60_000);
  }

  it('SIGSTOP past the lease before presenting: on SIGCONT the holder finds it lost the lock and presents nothing', async () => {
    const { auth, fleet, armVictim } = await fleetWith({ at: 'requesting', signal: 'SIGSTOP' });
    const refreshesBefore = auth.counts.refresh;
    const presentedBefore = auth.presented.length;
    armVictim();
    await sleep(300);
    // Paused for three leases: the others refresh without it when their tokens expire.
    await sleep(3000);
    const victim = fleet.workers[0]!;
    victim.kill('SIGCONT');
    await sleep(5000);
    const reports = await fleet.stop();
    const victimReport = reports.find((report) => report.id === 0);
    console.log(
      `SIGSTOP: refreshes ${auth.counts.refresh - refreshesBefore}, reuse ${auth.counts.reuse}, victim events ${JSON.stringify(victimReport?.events)}`,
    );
    expect(reports).toHaveLength(3);
    expect(reports.flatMap((report) => report.errors)).toEqual([]);
    expectNoReuse(auth);
    expect(auth.presented.length - presentedBefore).toBe(auth.counts.refresh - refreshesBefore);
    // It woke up holding nothing: the lock service said so, and it went back to waiting.
    expect(victimReport?.events['lock-lost'] ?? 0).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
