/** Refresh storms: what a revocation costs, in token requests, failures and tail latency. */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OAuth2Client, OAuth2Fetch } from '@badgateway/oauth2-client';
import { makeAxios } from './adapters.js';
import { type Burst, burst, percentile, startServers, table } from './harness.js';
import { sluice } from './lib.js';

const { clientCredentials, createClient } = sluice;

const p50 = (latencies: number[]) =>
  percentile(
    [...latencies].sort((a, b) => a - b),
    50,
  );
const p99 = (latencies: number[]) =>
  percentile(
    [...latencies].sort((a, b) => a - b),
    99,
  ).toFixed(1);

/** (a) One process, 200 concurrent requests right after the auth server revokes the token. */
export async function singleProcessStorm(): Promise<string> {
  const servers = await startServers();
  const clients: { name: string; get: (path: string) => Promise<unknown> }[] = [];
  const sluice = createClient({
    baseURL: servers.api,
    auth: { grant: clientCredentials({ tokenURL: servers.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
  });
  clients.push({ name: 'sluice', get: (path) => sluice.get(path) });
  const ax = makeAxios(servers.api, servers.tokenURL);
  clients.push({ name: 'axios + axios-auth-refresh', get: async (path) => (await ax.get(path)).data });
  const oauth = new OAuth2Client({ tokenEndpoint: servers.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
  const wrapper = new OAuth2Fetch({ client: oauth, getNewToken: () => oauth.clientCredentials() });
  clients.push({
    name: '@badgateway/oauth2-client',
    get: async (path) => {
      const response = await wrapper.fetch(`${servers.api}/${path}`);
      if (!response.ok) throw new Error(String(response.status));
      return response.json();
    },
  });
  const rows: (string | number)[][] = [];
  for (const client of clients) {
    // Warm up with the same burst, so that the baseline is not paying for opening connections.
    await burst(client.get, 200);
    const baseline = await burst(client.get, 200);
    const before = await servers.revoke();
    const storm = await burst(client.get, 200);
    const after = await servers.counts();
    rows.push([
      client.name,
      after.auth.token - before.auth.token,
      storm.failures,
      p99(baseline.latencies),
      p99(storm.latencies),
    ]);
  }
  await sluice.close();
  await servers.close();
  return table(['client', 'token requests', 'failed', 'p99 ms, no revocation', 'p99 ms, storm'], rows);
}

interface WorkerJob {
  kind: 'sluice' | 'axios' | 'sluice-rotating';
  concurrency: number;
  seconds?: number;
  store?: 'memory' | 'local' | 'redis' | 'postgres';
  storeURL?: string;
  push?: boolean;
}

async function fleet(
  processes: number,
  job: WorkerJob,
  servers: Awaited<ReturnType<typeof startServers>>,
  redis: string,
) {
  const namespace = `bench-${process.pid}-${Date.now()}-${job.kind}`;
  const workers = Array.from({ length: processes }, () =>
    fork(
      new URL('./storm-worker.ts', import.meta.url),
      [JSON.stringify({ ...job, api: servers.api, tokenURL: servers.tokenURL, redis, namespace })],
      { execArgv: ['--import', 'tsx'] },
    ),
  );
  const next = (worker: (typeof workers)[number], wanted: string) =>
    new Promise<Burst>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`storm worker exited with ${code}`));
      const onMessage = (message: { message: string } & Burst) => {
        if (message.message !== wanted) return;
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        resolve(message);
      };
      worker.on('message', onMessage);
      worker.once('exit', onExit);
    });
  await Promise.all(workers.map((worker) => next(worker, 'ready')));
  const send = async (message: 'warm' | 'go' | 'steady') => {
    const results = workers.map((worker) => next(worker, message));
    for (const worker of workers) worker.send(message);
    const all = await Promise.all(results);
    return {
      latencies: all.flatMap((result) => result.latencies),
      failures: all.reduce((sum, result) => sum + result.failures, 0),
    };
  };
  return {
    send,
    stop: async () => {
      await Promise.all(
        workers.map(
          (worker) =>
            new Promise<void>((resolve) => {
              worker.once('exit', () => resolve());
              worker.send('stop');
            }),
        ),
      );
    },
  };
}

/** (b) 8 processes x 50 concurrent requests after a revocation, sharing Redis (axios cannot share). */
export async function multiProcessStorm(redis: string): Promise<string> {
  const rows: (string | number)[][] = [];
  for (const kind of ['sluice', 'axios'] as const) {
    const servers = await startServers();
    const group = await fleet(8, { kind, concurrency: 50 }, servers, redis);
    await group.send('warm');
    await group.send('go');
    const baseline = await group.send('go');
    const before = await servers.revoke();
    const storm = await group.send('go');
    const after = await servers.counts();
    rows.push([
      kind === 'sluice' ? 'sluice + Redis store' : 'axios + axios-auth-refresh (per process)',
      after.auth.token - before.auth.token,
      storm.failures,
      p99(baseline.latencies),
      p99(storm.latencies),
    ]);
    await group.stop();
    await servers.close();
  }
  return table(['8 processes x 50', 'token requests', 'failed', 'p99 ms, no revocation', 'p99 ms, storm'], rows);
}

/** (c) A refresh token that rotates on every use, 2 s tokens, 4 processes sharing Redis, 8 s of traffic. */
export async function rotatingStorm(redis: string): Promise<string> {
  const servers = await startServers({ refreshTokens: true, lifetime: 2 });
  const group = await fleet(4, { kind: 'sluice-rotating', concurrency: 20, seconds: 8 }, servers, redis);
  const run = await group.send('steady');
  const counts = await servers.counts();
  await group.stop();
  await servers.close();
  return table(
    [
      '4 processes, rotating refresh tokens, 8 s',
      'requests',
      'failed',
      'token requests',
      'refresh-token reuse',
      'p99 ms',
    ],
    [
      [
        'sluice + Redis store',
        run.latencies.length,
        run.failures,
        counts.auth.token,
        counts.auth.reuse,
        p99(run.latencies),
      ],
    ],
  );
}

export interface StoreStorm {
  store: 'memory' | 'local' | 'redis' | 'postgres';
  processes: number;
  push: boolean;
  /** Token requests per revocation (median over the rounds). */
  tokens: number;
  reuse: number;
  failed: number;
  baseline: { p50: number; p99: number };
  storm: { p50: number; p99: number };
  /** What the revocation added to the burst's p99: storm minus baseline, median over the rounds. */
  added: number;
}

/**
 * (d) Every store, 1, 4 and 8 processes: 200 concurrent requests split between them (200, 4 x 50,
 * 8 x 25), right after the auth server revokes the token, with the token endpoint 50 ms slow and
 * rotating refresh tokens (reuse detection on). Each shared store runs with push wake-ups and without
 * (waiters poll). `rounds` revocations per setting; p50/p99 are medians over the rounds.
 */
export async function storeStorms(options: {
  redis: string;
  postgres: string;
  rounds: number;
  stores: StoreStorm['store'][];
}): Promise<StoreStorm[]> {
  const results: StoreStorm[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  const median = (values: number[]) =>
    percentile(
      [...values].sort((a, b) => a - b),
      50,
    );
  try {
    for (const store of options.stores) {
      for (const push of store === 'memory' ? [true] : [false, true]) {
        for (const processes of [1, 4, 8]) {
          const servers = await startServers({ refreshTokens: true, delay: 50 });
          const storeURL = store === 'local' ? dir : store === 'postgres' ? options.postgres : undefined;
          const group = await fleet(
            processes,
            { kind: 'sluice-rotating', concurrency: 200 / processes, store, push, ...(storeURL ? { storeURL } : {}) },
            servers,
            options.redis,
          );
          await group.send('warm');
          await group.send('go');
          const rounds: { tokens: number; failed: number; baseline: number[]; storm: number[] }[] = [];
          for (let round = 0; round < options.rounds; round++) {
            const baseline = await group.send('go');
            const before = await servers.revoke();
            const storm = await group.send('go');
            const after = await servers.counts();
            rounds.push({
              tokens: after.auth.token - before.auth.token,
              failed: baseline.failures + storm.failures,
              baseline: baseline.latencies,
              storm: storm.latencies,
            });
          }
          const counts = await servers.counts();
          await group.stop();
          await servers.close();
          const baseline = {
            p50: median(rounds.map((r) => p50(r.baseline))),
            p99: median(rounds.map((r) => Number(p99(r.baseline)))),
          };
          const storm = {
            p50: median(rounds.map((r) => p50(r.storm))),
            p99: median(rounds.map((r) => Number(p99(r.storm)))),
          };
          results.push({
            store,
            processes,
            push,
            tokens: median(rounds.map((r) => r.tokens)),
            reuse: counts.auth.reuse,
            failed: rounds.reduce((sum, r) => sum + r.failed, 0),
            baseline,
            storm,
            added: median(rounds.map((r) => Number(p99(r.storm)) - Number(p99(r.baseline)))),
          });
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

export function storeStormTable(results: StoreStorm[]): string {
  const ms = (value: number) => value.toFixed(0);
  return table(
    [
      'store',
      'wake-up',
      'processes x burst',
      'token requests',
      'reuse',
      'failed',
      'p50 / p99 ms, no revocation',
      'p50 / p99 ms, storm',
      'p99 added ms',
      'vs 1 process',
    ],
    results.map((result) => {
      const one = results.find(
        (other) => other.store === result.store && other.push === result.push && other.processes === 1,
      );
      return [
        result.store,
        result.store === 'memory' ? '-' : result.push ? 'push' : 'poll',
        `${result.processes} x ${200 / result.processes}`,
        result.tokens,
        result.reuse,
        result.failed,
        `${ms(result.baseline.p50)} / ${ms(result.baseline.p99)}`,
        `${ms(result.storm.p50)} / ${ms(result.storm.p99)}`,
        ms(result.added),
        one && one.added > 0 ? `${(result.added / one.added).toFixed(2)}x` : '-',
      ];
    }),
  );
}
