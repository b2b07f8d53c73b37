/**
 * One process of a multi-process storm: a client (Sluice sharing Redis, or axios with
 * axios-auth-refresh on its own) that waits for `go`, fires a burst, and reports.
 */

import type { SharedTokenStore } from '../stores/index.js';
import { makeAxios } from './adapters.js';
import { burst } from './harness.js';
import { sluice, sluiceStores } from './lib.js';

const { clientCredentials, createClient, passwordGrant } = sluice;
const { localTokenStore, postgresTokenStore, redisTokenStore } = sluiceStores;

interface Job {
  kind: 'sluice' | 'axios' | 'sluice-rotating';
  api: string;
  tokenURL: string;
  redis: string;
  /** Where Sluice keeps its token: Redis unless told (memory: each process its own). */
  store?: 'memory' | 'local' | 'redis' | 'postgres';
  /** The local store's directory, or PostgreSQL's URL. */
  storeURL?: string;
  /** false: waiters poll instead of being told of writes. */
  push?: boolean;
  namespace: string;
  concurrency: number;
  /** For the rotating run: keep requesting for this long. */
  seconds?: number;
}
const job = JSON.parse(process.argv[2] ?? '{}') as Job;
function open(): SharedTokenStore | undefined {
  const options = { namespace: job.namespace, push: job.push ?? true };
  if (job.kind === 'axios' || job.store === 'memory') return undefined;
  if (job.store === 'local') return localTokenStore(job.storeURL!, options);
  if (job.store === 'postgres') return postgresTokenStore(job.storeURL!, options);
  return redisTokenStore(job.redis, options);
}
const shared = open();

let get: (path: string) => Promise<unknown>;
let close = async () => {};
if (job.kind === 'axios') {
  const client = makeAxios(job.api, job.tokenURL);
  get = async (path) => (await client.get(path)).data;
} else {
  const grant =
    job.kind === 'sluice-rotating'
      ? passwordGrant({
          tokenURL: job.tokenURL,
          clientId: 'app',
          clientSecret: 'app-secret',
          username: 'alice',
          password: 'wonderland',
        })
      : clientCredentials({ tokenURL: job.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
  const client = createClient({
    baseURL: job.api,
    auth: { grant, ...(shared ? { store: shared.store, lock: shared.lock } : {}), skew: 500, jitter: 300 },
    retry: { baseDelay: 20 },
  });
  get = (path) => client.get(path);
  close = () => client.close();
}

async function steady(seconds: number, concurrency: number) {
  const latencies: number[] = [];
  let failures = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      while (Date.now() < until) {
        const sent = performance.now();
        try {
          await get(`items/${loop}`);
          latencies.push(performance.now() - sent);
        } catch {
          failures++;
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }),
  );
  return { latencies, failures };
}

process.on('message', async (message: 'warm' | 'go' | 'steady' | 'stop') => {
  if (message === 'stop') {
    await close();
    await shared?.close();
    process.exit(0);
  }
  const result =
    message === 'steady'
      ? await steady(job.seconds ?? 8, job.concurrency)
      : await burst(get, message === 'warm' ? 1 : job.concurrency);
  process.send?.({ message, ...result });
});
process.send?.({ message: 'ready' });
