/**
 * RSS and heap growth of Sluice's full chain over a long run. Runs as its own process with
 * --expose-gc, so that heap figures are taken after full collections.
 */

import { startServers } from './harness.js';
import { sluice } from './lib.js';

const { clientCredentials, createClient } = sluice;

const total = Number(process.argv[2] ?? 200_000);
const gc = (globalThis as { gc?: () => void }).gc;
const servers = await startServers();
const api = createClient({
  baseURL: servers.api,
  auth: { grant: clientCredentials({ tokenURL: servers.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
  logger: { debug() {}, info() {}, warn() {}, error() {} },
});
const run = async (count: number) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next++ < count) await api.get('items/1');
    }),
  );
};
await run(20_000);
gc?.();
const before = process.memoryUsage();
const readsBefore = api.auth!.managers[0]!.storeReads;
await run(total);
gc?.();
const after = process.memoryUsage();
const result = {
  requests: total,
  gc: Boolean(gc),
  heapBeforeMB: before.heapUsed / 2 ** 20,
  heapAfterMB: after.heapUsed / 2 ** 20,
  heapGrowthMB: (after.heapUsed - before.heapUsed) / 2 ** 20,
  rssBeforeMB: before.rss / 2 ** 20,
  rssAfterMB: after.rss / 2 ** 20,
  storeReadsDuringRun: api.auth!.managers[0]!.storeReads - readsBefore,
};
await api.close();
await servers.close();
process.send?.(result);
if (!process.send) console.log(result);
process.exit(0);
