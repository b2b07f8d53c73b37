/**
 * `npm run demo`: a local OAuth token endpoint and an API on 127.0.0.1, and ~20 s of realistic traffic
 * through Sluice: many concurrent workers, 5-second tokens, a revocation half way, injected 503s and
 * 429s with Retry-After. Ends with a summary table.
 *
 *   npm run demo -- --seconds 20 --workers 50
 *   npm run demo -- --processes 4 --local                          (4 processes sharing one token through files, no server)
 *   npm run demo -- --processes 4 --redis redis://127.0.0.1:6379   (workers in 4 processes sharing Redis)
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startApiServer, startAuthServer } from 'sluice/testing';
import { runWorkers, type WorkerReport } from './workload.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    workers: { type: 'string', default: '50' },
    lifetime: { type: 'string', default: '5' },
    processes: { type: 'string', default: '1' },
    redis: { type: 'string' },
    local: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const workers = Number(values.workers);
const lifetime = Number(values.lifetime);
const processes = Number(values.processes);
if (processes > 1 && !values.redis && !values.local) {
  console.error('--processes N needs --local (files, no server) or --redis URL: the processes share their token');
  process.exit(2);
}
const localDir = values.local ? mkdtempSync(join(tmpdir(), 'sluice-demo-')) : undefined;
process.on('exit', () => {
  if (localDir) rmSync(localDir, { recursive: true, force: true });
});

const auth = await startAuthServer({ lifetime });
const api = await startApiServer({ auth, failRate: 0.01, throttleRate: 0.004, retryAfter: 1 });
console.log(`token endpoint ${auth.tokenURL}   API ${api.url}`);
console.log(
  `${processes} process(es) x ${workers} workers for ${seconds} s; tokens live ${lifetime} s; revocation at ${seconds / 2} s; ~1% 503s, ~0.4% 429s\n`,
);

const job = {
  apiURL: api.url,
  tokenURL: auth.tokenURL,
  seconds,
  workers,
  redis: values.redis,
  local: localDir,
  namespace: `demo-${process.pid}-${Date.now()}`,
};
const started = Date.now();
const revocation = setTimeout(
  () => {
    auth.revokeAll();
    process.stdout.write(
      `\n-- ${((Date.now() - started) / 1000).toFixed(1)} s: the auth server revokes every token --\n`,
    );
  },
  (seconds * 1000) / 2,
);

const totals = { requests: 0, ok: 0, failed: 0 };
const progress = setInterval(() => {
  const elapsed = ((Date.now() - started) / 1000).toFixed(0);
  const line = `  ${elapsed.padStart(3)} s  requests ${String(api.counts.requests).padStart(7)}  token requests ${auth.counts.token}  401s ${api.counts.unauthorized}  503s ${api.counts.injected503}  429s ${api.counts.injected429}`;
  if (process.stdout.isTTY) process.stdout.write(`\r${line}`);
  else console.log(line);
}, 1000);

let reports: WorkerReport[];
if (processes <= 1) {
  reports = [await runWorkers(job)];
} else {
  reports = await Promise.all(
    Array.from(
      { length: processes },
      () =>
        new Promise<WorkerReport>((resolve, reject) => {
          const child = fork(new URL('./workload.ts', import.meta.url), [JSON.stringify(job)], {
            execArgv: ['--import', 'tsx'],
          });
          child.once('message', (report) => resolve(report as WorkerReport));
          child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`worker process exited ${code}`))));
        }),
    ),
  );
}
clearInterval(progress);
clearTimeout(revocation);
process.stdout.write('\n\n');

const latencies = reports.flatMap((report) => report.latencies).sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
for (const report of reports) {
  totals.requests += report.requests;
  totals.ok += report.ok;
  totals.failed += report.failed;
}
const sum = (key: 'retries' | 'reissues' | 'refreshExpiry' | 'refreshRejected') =>
  reports.reduce((total, report) => total + report[key], 0);
const elapsed = (Date.now() - started) / 1000;
// One token to start and one per token lifetime (each is replaced 1 to 1.5 s before it expires: skew 1 s
// plus up to 0.5 s of jitter); the revocation starts a new token, and a new cycle, half way.
const cycles = (span: number) => Math.floor(span / (lifetime - 1.25));
const expected = 1 + cycles(seconds / 2) + 1 + cycles(elapsed - seconds / 2);
const rows: [string, string][] = [
  ['requests', String(totals.requests)],
  ['succeeded', String(totals.ok)],
  ['failed', String(totals.failed)],
  [
    'token requests',
    `${auth.counts.token}  (expected about ${expected}: 1 to start, 1 per token lifetime, 1 for the revocation)`,
  ],
  ['retries (503/429)', String(sum('retries'))],
  ['re-issues after 401', String(sum('reissues'))],
  ['p50 latency', `${pct(50).toFixed(1)} ms`],
  ['p99 latency', `${pct(99).toFixed(1)} ms`],
  ['throughput', `${(totals.requests / elapsed).toFixed(0)} req/s`],
];
const width = Math.max(...rows.map(([name]) => name.length));
console.log('summary');
for (const [name, value] of rows) console.log(`  ${name.padEnd(width)}  ${value}`);
if (reports.some((report) => report.errors.length > 0)) {
  console.log('\nfailures:', [...new Set(reports.flatMap((report) => report.errors))].slice(0, 5).join('; '));
}
await api.close();
await auth.close();
process.exit(totals.failed === 0 ? 0 : 1);
