/**
 * One client's allocations: runs with `--trace-gc-nvp`, whose lines (one per collection, with the bytes
 * `allocated` since the one before) go to stdout between the START and END markers this prints around
 * `requests` GETs at concurrency 64, after a warm-up. bench/alloc.ts reads them.
 */
import { fetchToken, makeAdapters } from './adapters.js';
import { startServers } from './harness.js';

const [name = 'undici.request', count = '50000'] = process.argv.slice(2);
const requests = Number(count);
const servers = await startServers();
const adapters = makeAdapters(servers.api, servers.tokenURL, await fetchToken(servers.tokenURL));
const adapter = adapters.find((candidate) => candidate.name === name);
if (!adapter) throw new Error(`no adapter named ${name}`);
const run = async (total: number) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async (_, loop) => {
      while (next++ < total) await adapter.get(`items/${loop}`);
    }),
  );
};
await run(20_000);
process.stdout.write('\nSTART\n');
await run(requests);
process.stdout.write('\nEND\n');
for (const each of adapters) await each.close();
await servers.close();
process.exit(0);
