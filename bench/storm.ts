/** Refresh storms: what a revocation costs, in token requests, failures and tail latency. */
import { fork } from 'node:child_process';
import { OAuth2Client, OAuth2Fetch } from '@badgateway/oauth2-client';
import { clientCredentials, createClient } from '../src/index.js';
import { makeAxios } from './adapters.js';
import { type Burst, burst, percentile, startServers, table } from './harness.js';

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
      const onMessage = (message: { message: string } & Burst) => {
        if (message.message !== wanted) return;
        worker.off('message', onMessage);
        resolve(message);
      };
      worker.on('message', onMessage);
      worker.once('exit', (code) => reject(new Error(`storm worker exited with ${code}`)));
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
