/**
 * The demo's workers: N concurrent loops of GETs and POSTs through one Sluice client. Run in the demo's
 * own process, or forked (one per process) with a job in argv, reporting back over IPC.
 */
import { type AuthOptions, clientCredentials, createClient } from '../src/index.js';

export interface Job {
  apiURL: string;
  tokenURL: string;
  seconds: number;
  workers: number;
  redis?: string | undefined;
  /** A directory: share the token through localTokenStore (no server). */
  local?: string | undefined;
  namespace: string;
}

export interface WorkerReport {
  requests: number;
  ok: number;
  failed: number;
  retries: number;
  reissues: number;
  refreshExpiry: number;
  refreshRejected: number;
  latencies: number[];
  errors: string[];
}

export async function runWorkers(job: Job): Promise<WorkerReport> {
  const stores = await import('../stores/index.js');
  const shared = job.redis
    ? stores.redisTokenStore(job.redis, { namespace: job.namespace })
    : job.local
      ? stores.localTokenStore(job.local, { namespace: job.namespace })
      : undefined;
  const auth: AuthOptions = {
    grant: clientCredentials({ tokenURL: job.tokenURL, clientId: 'app', clientSecret: 'app-secret', scope: 'items' }),
    skew: 1000,
    jitter: 500,
    ...(shared ? { store: shared.store, lock: shared.lock } : {}),
  };
  const client = createClient({ baseURL: job.apiURL, auth, retry: { limit: 3, baseDelay: 50, maxRetryAfter: 5000 } });
  const report: WorkerReport = {
    requests: 0,
    ok: 0,
    failed: 0,
    retries: 0,
    reissues: 0,
    refreshExpiry: 0,
    refreshRejected: 0,
    latencies: [],
    errors: [],
  };
  client.on((event) => {
    if (event.type === 'retry') report.retries++;
    else if (event.type === 'reissue') report.reissues++;
    else if (event.type === 'token' && event.action === 'refresh-started') {
      if (event.reason === 'rejected') report.refreshRejected++;
      else report.refreshExpiry++;
    }
  });
  const until = Date.now() + job.seconds * 1000;
  await Promise.all(
    Array.from({ length: job.workers }, async (_, worker) => {
      for (let i = 0; Date.now() < until; i++) {
        const started = performance.now();
        report.requests++;
        try {
          if (i % 5 === 4) {
            await client.post('echo', { worker, i }, { headers: { 'idempotency-key': `${worker}-${i}` } });
          } else {
            await client.get(`items/${worker}-${i}`);
          }
          report.ok++;
        } catch (error) {
          report.failed++;
          if (report.errors.length < 20) report.errors.push(String((error as Error).message));
        }
        report.latencies.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }),
  );
  await client.close();
  await shared?.close();
  return report;
}

if (process.send && process.argv[2]) {
  const report = await runWorkers(JSON.parse(process.argv[2]) as Job);
  process.send(report, () => process.exit(0));
}
