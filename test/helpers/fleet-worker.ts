/**
 * One worker process of a fleet test: `loops` concurrent request loops through one Sluice client whose
 * token lives in a shared store. Started by test/helpers/fleet.ts with a job in argv; says `ready` after
 * its first good response, stops on `stop` (or after `maxSeconds`), and reports its counts over IPC.
 */

import KeyvPostgres from '@keyv/postgres';
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import pg from 'pg';
import { clientCredentials, createClient, customGrant, passwordGrant, type SluiceEvent } from '../../src/index.js';
import {
  keyvRedisLock,
  keyvTokenStore,
  localTokenStore,
  postgresLock,
  postgresTokenStore,
  redisTokenStore,
} from '../../stores/index.js';

export interface FleetJob {
  id: number;
  apiURL: string;
  tokenURL: string;
  /** `keyv-*`: a Keyv the user built by hand (default `useKeyPrefix`, their own table), with its lock. */
  engine: 'redis' | 'postgres' | 'keyv-redis' | 'keyv-postgres' | 'local';
  storeURL: string;
  /** For `redis`: a Cluster or Sentinel target in place of `storeURL`. */
  redisTarget?: { cluster: string[] } | { sentinels: string[]; name: string };
  /** More options for the engine's store (`lock: 'lease'`, `listenURL`, ...). */
  storeOptions?: Record<string, unknown>;
  namespace: string;
  loops: number;
  maxSeconds: number;
  grant: 'client_credentials' | 'password';
  skew?: number;
  jitter?: number;
  lockTtl?: number;
  lockWait?: number;
  /**
   * Once told `kick` (see Fleet.kick), this worker refreshes at once and, at the first token event named
   * `at`, sends itself `signal` (after `afterMs`, when given): a holder killed or paused mid-refresh.
   */
  fault?: { at: string; signal: 'SIGKILL' | 'SIGSTOP'; afterMs?: number };
}

export interface FleetReport {
  id: number;
  ok: number;
  failed: number;
  errors: string[];
  storeReads: number;
  warnings: number;
  events: Record<string, number>;
}

const job = JSON.parse(process.argv[2] ?? '{}') as FleetJob;
function handBuilt() {
  const { namespace } = job;
  if (job.engine === 'keyv-redis') {
    const adapter = new KeyvRedis(job.storeURL);
    const keyv = new Keyv({ store: adapter, namespace });
    return {
      store: keyvTokenStore(keyv),
      lock: keyvRedisLock(keyv),
      close: () => keyv.disconnect(),
    };
  }
  const keyv = new Keyv({ store: new KeyvPostgres({ uri: job.storeURL, table: 'sluice_tokens' }), namespace });
  const pool = new pg.Pool({ connectionString: job.storeURL, max: 2 });
  return {
    store: keyvTokenStore(keyv),
    lock: postgresLock(pool, { namespace }),
    close: async () => {
      await keyv.disconnect();
      await pool.end();
    },
  };
}
const storeOptions = { namespace: job.namespace, ...job.storeOptions };
const shared =
  job.engine === 'redis'
    ? redisTokenStore(job.redisTarget ?? job.storeURL, storeOptions)
    : job.engine === 'postgres'
      ? postgresTokenStore(job.storeURL, storeOptions)
      : job.engine === 'local'
        ? localTokenStore(job.storeURL, storeOptions)
        : handBuilt();
// Each worker names itself to the token server (extraParams), which would make it a credential of its
// own: one custom grant identity over it keeps the fleet on one store key.
const named =
  job.grant === 'password'
    ? passwordGrant({
        tokenURL: job.tokenURL,
        clientId: 'app',
        clientSecret: 'app-secret',
        username: 'alice',
        password: 'wonderland',
        extraParams: { worker: String(job.id) },
      })
    : clientCredentials({
        tokenURL: job.tokenURL,
        clientId: 'app',
        clientSecret: 'app-secret',
        extraParams: { worker: String(job.id) },
      });
const grant = customGrant({
  id: `fleet-${job.grant ?? 'client'}`,
  obtain: (context) => named.obtain(context),
  refresh: (context, tokens) => (named.refresh as NonNullable<typeof named.refresh>)(context, tokens),
  canReauthenticate: true,
});
const report: FleetReport = { id: job.id, ok: 0, failed: 0, errors: [], storeReads: 0, warnings: 0, events: {} };
const client = createClient({
  baseURL: job.apiURL,
  timeout: 20_000,
  retry: { limit: 2, baseDelay: 20 },
  auth: {
    grant,
    store: shared.store,
    lock: shared.lock,
    ...(job.skew !== undefined ? { skew: job.skew } : {}),
    ...(job.jitter !== undefined ? { jitter: job.jitter } : {}),
    ...(job.lockTtl !== undefined ? { lockTtl: job.lockTtl } : {}),
    ...(job.lockWait !== undefined ? { lockWait: job.lockWait } : {}),
  },
  onEvent: (event: SluiceEvent) => {
    if (event.type !== 'token') return;
    if (armed && job.fault && event.action === job.fault.at) {
      armed = false;
      const { signal, afterMs } = job.fault;
      const hit = () => process.kill(process.pid, signal);
      if (afterMs) setTimeout(hit, afterMs);
      else hit();
    }
    report.events[event.action] = (report.events[event.action] ?? 0) + 1;
    if (event.action === 'store-unavailable') report.warnings++;
  },
});

let running = true;
let announced = false;
let armed = false;
process.on('message', (message) => {
  if (message === 'stop') running = false;
  if (message === 'kick') {
    armed = true;
    client.auth?.invalidate();
    client.get(`items/${job.id}-kick`).catch(() => {});
  }
});
const hardStop = setTimeout(() => {
  running = false;
}, job.maxSeconds * 1000);

// The store's connection is opened before the traffic: a first read that also pays for connecting
// (Sentinel discovery, on a loaded machine) can pass the store's time budget, and the worker then goes on
// with a token of its own, by design (store-unavailable); what these runs count is the tokens of a fleet
// whose store answers.
for (let tries = 0; tries < 20; tries++) {
  try {
    await shared.store.get('fleet-warm-up');
    break;
  } catch {
    // Still connecting: the connection goes on opening in the background.
  }
}

await Promise.all(
  Array.from({ length: job.loops }, async (_, loop) => {
    for (let i = 0; running; i++) {
      try {
        await client.get(`items/${job.id}-${loop}-${i}`);
        report.ok++;
        if (!announced) {
          announced = true;
          process.send?.('ready');
        }
      } catch (error) {
        report.failed++;
        if (report.errors.length < 10) report.errors.push(`${(error as Error).name}: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }),
);
clearTimeout(hardStop);
report.storeReads = client.auth?.managers.reduce((sum, manager) => sum + manager.storeReads, 0) ?? 0;
await client.close();
await shared.close();
process.send?.({ report }, () => process.exit(0));
