/**
 * `npm run bench`: Sluice side by side with the clients people would otherwise pick, measured in the
 * same run on the same machine. Prints markdown tables (pasted into BENCHMARKS.md) and whether each
 * target is met. Flags: --rounds 5 --seconds 2 --only throughput|memory|held|curves|alloc|storm|stores --redis redis://...
 * --postgres postgres://... --stores memory,local,redis,postgres
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { fetchToken, makeAdapters } from './adapters.js';
import { allocations } from './alloc.js';
import { costCurves, curveTable } from './curves.js';
import { startServers, table } from './harness.js';
import { measured } from './lib.js';
import { multiProcessStorm, rotatingStorm, singleProcessStorm, storeStorms, storeStormTable } from './storm.js';
import { type Result, throughput } from './throughput.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '2' },
    only: { type: 'string' },
    redis: { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    postgres: { type: 'string', default: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    stores: { type: 'string', default: 'memory,local,redis,postgres' },
    requests: { type: 'string', default: '1000000' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const wants = (part: string) => values.only === undefined || values.only === part;
const version = (name: string) =>
  (
    JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;
const targets: [string, boolean, string][] = [];

console.log(`# Sluice benchmarks\n`);
console.log(`Sluice measured from its ${measured}`);
console.log(
  `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${new Date().toISOString().slice(0, 10)}`,
);
console.log(
  [
    'ofetch',
    'undici',
    'ky',
    'got',
    'axios',
    'axios-retry',
    'axios-auth-refresh',
    '@badgateway/oauth2-client',
    'keyv',
    '@keyv/redis',
  ]
    .map((name) => `${name} ${version(name)}`)
    .join(', '),
);

if (wants('throughput')) {
  const servers = await startServers();
  const token = await fetchToken(servers.tokenURL);
  const adapters = makeAdapters(servers.api, servers.tokenURL, token);
  const sluice = adapters[0]!;
  await sluice.get('items/warm');
  const readsBefore = sluice.storeReads?.() ?? 0;
  let served = 0;
  const all: Result[] = [];
  for (const concurrency of [1, 64]) {
    console.log(`\n## Throughput, concurrency ${concurrency} (${rounds} rounds of ${seconds} s, interleaved)\n`);
    const results = await throughput(adapters, concurrency, rounds, seconds);
    all.push(...results);
    const base = results.find((result) => result.name === 'ofetch')!.rps;
    const floor = results.find((result) => result.name === 'undici.request')!;
    console.log(
      table(
        [
          'client',
          'req/s (median)',
          'x undici',
          'x ofetch',
          'CPU µs/req',
          'CPU x undici',
          'p50 ms',
          'p99 ms',
          'failed',
        ],
        results.map((result) => [
          result.name,
          result.rps.toFixed(0),
          (result.rps / floor.rps).toFixed(2),
          (result.rps / base).toFixed(2),
          result.cpu.toFixed(1),
          (result.cpu / floor.cpu).toFixed(2),
          result.p50.toFixed(2),
          result.p99.toFixed(2),
          result.failures,
        ]),
      ),
    );
  }
  served = (await servers.counts()).api.requests;
  const readsAfter = sluice.storeReads?.() ?? 0;
  const at = (concurrency: number, name: string) =>
    all.find((result) => result.concurrency === concurrency && result.name === name)!;
  const at64 = (name: string) => at(64, name).rps;
  const full = at64('sluice (full chain)');
  const ratio = (value: number) => `${value.toFixed(2)}x`;
  targets.push(['full chain >= 2x bare ofetch (c=64)', full >= 2 * at64('ofetch'), ratio(full / at64('ofetch'))]);
  for (const [concurrency, least] of [
    [64, 0.8],
    [1, 0.85],
  ] as const) {
    const mine = at(concurrency, 'sluice (full chain)').rps / at(concurrency, 'undici.request').rps;
    targets.push([`full chain >= ${least}x undici.request (c=${concurrency})`, mine >= least, ratio(mine)]);
  }
  const cpu = at(64, 'sluice (full chain)').cpu / at(64, 'undici.request').cpu;
  targets.push(['full chain CPU per request <= 1.25x undici.request (c=64)', cpu <= 1.25, ratio(cpu)]);
  for (const peer of ['ky', 'got', 'axios (+retry, +auth-refresh)', 'fetch']) {
    targets.push([`full chain ahead of ${peer} (c=64)`, full > at64(peer), ratio(full / at64(peer))]);
  }
  // The target (the default chain, whose every attempt has a time limit, against bare ofetch,
  // which has none), then like for like: the same chain without a time limit against bare ofetch, and
  // the default chain against ofetch with one.
  for (const concurrency of [1, 64]) {
    for (const [mineName, peer] of [
      ['sluice (full, fetch transport)', 'ofetch'],
      ['sluice (full, fetch, no timeout)', 'ofetch'],
      ['sluice (full, fetch transport)', 'ofetch (timeout 30 s)'],
    ] as const) {
      const mine = at(concurrency, mineName).rps / at(concurrency, peer).rps;
      const label = mineName.includes('no timeout') ? 'fetch-transport chain, no timeout,' : 'fetch-transport chain';
      targets.push([`${label} >= 0.95x ${peer} (c=${concurrency})`, mine >= 0.95, ratio(mine)]);
    }
  }
  targets.push([
    '0 store reads per request on the hot path',
    readsAfter === readsBefore,
    `${readsAfter - readsBefore} reads over ${served} requests`,
  ]);
  for (const adapter of adapters) await adapter.close();
  await servers.close();
}

if (wants('memory')) {
  console.log(`\n## Memory over ${Number(values.requests).toLocaleString('en')} requests (full chain, c=64)\n`);
  const child = fork(new URL('./memory.ts', import.meta.url), [values.requests], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
  });
  const result = await new Promise<Record<string, number | number[] | boolean>>((resolve) =>
    child.once('message', (message) => resolve(message as never)),
  );
  const mb = (value: unknown) => `${(value as number).toFixed(1)} MB`;
  const checkpoints = result.checkpointsMB as number[];
  console.log(
    table(
      [
        'heap before',
        ...checkpoints.map((_, i) => `heap at ${(i + 1) * 20}%`),
        'RSS before',
        'RSS after',
        'store reads',
      ],
      [
        [
          mb(result.heapBeforeMB),
          ...checkpoints.map(mb),
          mb(result.rssBeforeMB),
          mb(result.rssAfterMB),
          String(result.storeReadsDuringRun),
        ],
      ],
    ),
  );
  targets.push(['heap growth < 10 MB over the run', (result.heapGrowthMB as number) < 10, mb(result.heapGrowthMB)]);
  const drift = Math.max(...checkpoints) - Math.min(...checkpoints);
  targets.push(['heap flat: checkpoints within 2 MB of each other', drift < 2, mb(drift)]);
}

if (wants('held')) {
  console.log('\n## Memory held per request in flight (1,024 requests held unanswered, heap after a full GC)\n');
  const child = fork(new URL('./held.ts', import.meta.url), [], { execArgv: ['--import', 'tsx', '--expose-gc'] });
  const result = await new Promise<Record<string, number>>((resolve) =>
    child.once('message', (message) => resolve(message as Record<string, number>)),
  );
  const floor = result['undici.request']!;
  console.log(
    table(
      ['client', 'KB held per request in flight', 'x undici'],
      Object.entries(result).map(([name, bytes]) => [name, (bytes / 1024).toFixed(1), (bytes / floor).toFixed(2)]),
    ),
  );
}

if (wants('curves')) {
  console.log(`\n## Cost curves: full chain against undici.request (${rounds} rounds of ${seconds} s per point)\n`);
  const results = await costCurves({ rounds, seconds });
  console.log(curveTable(results));
  const reference = results.find((result) => result.label === 'c=64')!.ratio;
  const worst = results.reduce((low, result) => (result.ratio < low.ratio ? result : low));
  targets.push([
    'curves: ratio to undici never falls > 10% below the 200 B, c=64 point',
    worst.ratio >= 0.9 * reference,
    `lowest ${worst.ratio.toFixed(2)} (${worst.curve} ${worst.label}) vs ${reference.toFixed(2)}`,
  ]);
}

if (wants('alloc')) {
  console.log('\n## Allocations per request (c=64, 50,000 requests after a warm-up, --trace-gc-nvp)\n');
  const rows: (string | number)[][] = [];
  let floor = 0;
  for (const name of ['undici.request', 'sluice (full chain)', 'sluice (no middleware)', 'ofetch']) {
    const result = await allocations(name);
    if (name === 'undici.request') floor = result.bytesPerRequest;
    rows.push([
      name,
      (result.bytesPerRequest / 1024).toFixed(1),
      (result.bytesPerRequest / floor).toFixed(2),
      result.collectionsPer1000.toFixed(2),
    ]);
  }
  console.log(table(['client', 'KB allocated per request', 'x undici', 'collections per 1,000 requests'], rows));
}

if (wants('storm')) {
  console.log('\n## Refresh storm (a): one process, 200 concurrent requests after a revocation\n');
  console.log(await singleProcessStorm());
  console.log('\n## Refresh storm (b): 8 processes x 50 concurrent requests after a revocation\n');
  const multi = await multiProcessStorm(values.redis);
  console.log(multi);
  const sluiceRow = multi.split('\n').find((line) => line.startsWith('| sluice'))!;
  const [, tokens, failed] = sluiceRow
    .split('|')
    .map((cell) => cell.trim())
    .slice(1);
  targets.push([
    'storm (b): exactly 1 token request, 0 failed',
    tokens === '1' && failed === '0',
    `${tokens} token requests, ${failed} failed`,
  ]);
  console.log('\n## Refresh storm (c): rotating refresh tokens, 4 processes\n');
  const rotating = await rotatingStorm(values.redis);
  console.log(rotating);
  const row = rotating
    .split('\n')
    .at(-1)!
    .split('|')
    .map((cell) => cell.trim());
  targets.push([
    'storm (c): 0 failed, 0 refresh-token reuse',
    row[3] === '0' && row[5] === '0',
    `${row[3]} failed, ${row[5]} reuse`,
  ]);
}

if (wants('stores')) {
  console.log('\n## Refresh storm (d): every store, 200 requests over 1, 4 or 8 processes, token endpoint +50 ms\n');
  const results = await storeStorms({
    redis: values.redis,
    postgres: values.postgres,
    rounds,
    stores: values.stores.split(',') as Parameters<typeof storeStorms>[0]['stores'],
  });
  console.log(storeStormTable(results));
  for (const result of results) {
    if (result.store === 'memory' || !result.push) continue;
    const name = `storm (d) ${result.store}, ${result.processes} process${result.processes > 1 ? 'es' : ''}`;
    targets.push([
      `${name}: 1 token request, 0 reuse, 0 failed`,
      result.tokens === 1 && result.reuse === 0 && result.failed === 0,
      `${result.tokens} token requests, ${result.reuse} reuse, ${result.failed} failed`,
    ]);
    if (result.processes === 1) continue;
    const one = results.find((other) => other.store === result.store && other.push && other.processes === 1)!;
    targets.push([
      `${name}: p99 added by the revocation <= 1.25x one process's`,
      result.added <= 1.25 * one.added,
      `${result.added.toFixed(0)} ms vs ${one.added.toFixed(0)} ms (${(result.added / one.added).toFixed(2)}x)`,
    ]);
    targets.push([
      `${name}: p99 added <= token endpoint (50 ms) + 50 ms`,
      result.added <= 100,
      `${result.added.toFixed(0)} ms`,
    ]);
  }
}

console.log('\n## Targets\n');
console.log(
  table(
    ['target', 'met', 'measured'],
    targets.map(([name, met, measured]) => [name, met ? 'yes' : 'NO', measured]),
  ),
);
process.exit(0);
