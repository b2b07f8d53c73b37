/**
 * RSS and heap growth of Sluice's full chain over a long run. Runs as its own process with
 * --expose-gc, so that heap figures are taken after full collections.
 */

import { startServers } from './harness.js';
import { sluice } from './lib.js';

const { clientCredentials, createClient } = sluice;

const total = Number(process.argv[2] ?? 1_000_000);
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
const heapMB = () => {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
};
await run(20_000);
const before = heapMB();
const rssBefore = process.memoryUsage().rss;
const readsBefore = api.auth!.managers[0]!.storeReads;
// Five equal parts, the heap taken after a full collection at the end of each: flat means no trend.
const checkpoints: number[] = [];
for (let part = 0; part < 5; part++) {
  await run(Math.round(total / 5));
  checkpoints.push(heapMB());
}
const after = checkpoints.at(-1)!;
const result = {
  requests: total,
  gc: Boolean(gc),
  heapBeforeMB: before,
  checkpointsMB: checkpoints,
  heapAfterMB: after,
  heapGrowthMB: after - before,
  rssBeforeMB: rssBefore / 2 ** 20,
  rssAfterMB: process.memoryUsage().rss / 2 ** 20,
  storeReadsDuringRun: api.auth!.managers[0]!.storeReads - readsBefore,
};
await api.close();
await servers.close();
process.send?.(result);
if (!process.send) console.log(result);
process.exit(0);
