/**
 * Cost curves: Sluice's full chain against undici.request (the floor) as the work grows, each point's
 * throughput ratio measured in interleaved rounds in one run (the median of the rounds' own ratios), with
 * the garbage-collection pause per request of each. Concurrency 1..1024; response bodies
 * 200 B to 1 MB (parsed JSON) and a 10 MB stream that must not be buffered; request bodies of the same
 * sizes (the 10 MB one a stream); 1 and 50 origins through one client. Also the peak RSS growth per
 * request in flight, sampled every 20 ms.
 */
import { fork } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { median, table } from './harness.js';
import { sluice } from './lib.js';

const { createClient, customGrant } = sluice;

interface Point {
  curve: string;
  label: string;
  concurrency: number;
  /** One request through each client, resolved once the body was read (parsed, or streamed to the end). */
  sluice: (i: number) => Promise<unknown>;
  undici: (i: number) => Promise<unknown>;
}

export interface CurveResult {
  curve: string;
  label: string;
  concurrency: number;
  undici: number;
  sluice: number;
  ratio: number;
  cpuRatio: number;
  /** Peak RSS growth over the point's baseline, per request in flight, in KB. */
  rssPerInFlight: { sluice: number; undici: number };
  /** Garbage-collection pause per request, in µs: where a point's extra CPU goes when it falls. */
  gcPerRequest: { sluice: number; undici: number };
}

const MB = 1024 * 1024;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

export async function startCurveServer(origins: number) {
  const child = fork(new URL('./curve-server.ts', import.meta.url), [String(origins)], {
    execArgv: ['--import', 'tsx'],
  });
  const { urls } = await new Promise<{ urls: string[] }>((resolve, reject) => {
    child.once('message', (message) => resolve(message as { urls: string[] }));
    child.once('exit', (code) => reject(new Error(`curve server exited with ${code}`)));
  });
  return { urls, close: () => child.kill() };
}

async function drain(stream: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const part of stream) n += part.length;
  return n;
}

/** Milliseconds of garbage-collection pauses since the process started (the observer's running total). */
let gcPaused = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPaused += entry.duration;
});

/**
 * `seconds` of `concurrency` loops; requests per second, CPU and GC pause µs per request, and the RSS
 * peak seen.
 */
async function measure(send: (i: number) => Promise<unknown>, concurrency: number, seconds: number) {
  // A collection forced just before is timed by an entry that may not have arrived yet.
  await new Promise((resolve) => setImmediate(resolve));
  let done = 0;
  let peak = process.memoryUsage().rss;
  const pausedBefore = gcPaused;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      for (let i = loop; performance.now() < until; i += concurrency) {
        await send(i);
        done++;
      }
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(sampler);
  // Entries arrive after the pause they time: let the last ones in before reading the total.
  await new Promise((resolve) => setImmediate(resolve));
  return {
    rps: done / ((performance.now() - started) / 1000),
    cpu: (cpu.user + cpu.system) / done,
    gc: ((gcPaused - pausedBefore) * 1000) / done,
    peak,
  };
}

export async function costCurves(options: { rounds: number; seconds: number }): Promise<CurveResult[]> {
  const server = await startCurveServer(50);
  const [first] = server.urls as [string];
  const token = 'bench-token';
  const agent = new Agent({ connections: 128 });
  const api = createClient({
    auth: {
      grant: customGrant({ id: 'curves', obtain: async () => ({ accessToken: token, expiresIn: 3600 }) }),
      origins: server.urls,
    },
    logger: silent,
  });
  const authorization = `Bearer ${token}`;
  const get = (base: string, path: string) => async () =>
    (await request(`${base}${path}`, { dispatcher: agent, headers: { authorization } })).body.json();
  const bodyOf = (size: number) => new Uint8Array(size).fill(120);
  const bodies = new Map([200, 64 * 1024, MB].map((size) => [size, bodyOf(size)]));
  const tenMB = Buffer.alloc(64 * 1024, 120);
  const streamOf = () =>
    Readable.from(
      (function* () {
        for (let i = 0; i < 160; i++) yield tenMB;
      })(),
    );
  const points: Point[] = [];
  for (const concurrency of [1, 16, 64, 256, 1024]) {
    points.push({
      curve: 'concurrency',
      label: `c=${concurrency}`,
      concurrency,
      sluice: () => api.get(`${first}/bytes/200`),
      undici: get(first, '/bytes/200'),
    });
  }
  for (const [size, label] of [
    [64 * 1024, '64 KB'],
    [MB, '1 MB'],
  ] as const) {
    points.push({
      curve: 'response body',
      label,
      concurrency: 64,
      sluice: () => api.get(`${first}/bytes/${size}`),
      undici: get(first, `/bytes/${size}`),
    });
  }
  points.push({
    curve: 'response body',
    label: '10 MB stream',
    concurrency: 8,
    sluice: async () =>
      drain((await api.get(`${first}/bytes/${10 * MB}?raw`, { responseType: 'stream' })) as AsyncIterable<Uint8Array>),
    undici: async () =>
      drain((await request(`${first}/bytes/${10 * MB}?raw`, { dispatcher: agent, headers: { authorization } })).body),
  });
  for (const [size, label] of [
    [200, '200 B'],
    [64 * 1024, '64 KB'],
    [MB, '1 MB'],
  ] as const) {
    const body = bodies.get(size)!;
    points.push({
      curve: 'request body',
      label,
      concurrency: 64,
      sluice: () => api.post(`${first}/sink`, body),
      undici: async () =>
        (
          await request(`${first}/sink`, { dispatcher: agent, method: 'POST', body, headers: { authorization } })
        ).body.json(),
    });
  }
  points.push({
    curve: 'request body',
    label: '10 MB stream',
    concurrency: 8,
    sluice: () => api.post(`${first}/sink`, streamOf()),
    undici: async () =>
      (
        await request(`${first}/sink`, {
          dispatcher: agent,
          method: 'POST',
          body: streamOf(),
          headers: { authorization },
        })
      ).body.json(),
  });
  points.push({
    curve: 'origins',
    label: '50 origins',
    concurrency: 64,
    sluice: (i) => api.get(`${server.urls[i % 50]}/bytes/200`),
    undici: (i) => get(server.urls[i % 50]!, '/bytes/200')(),
  });

  const results: CurveResult[] = [];
  gcObserver.observe({ entryTypes: ['gc'] });
  try {
    for (const point of points) {
      for (const send of [point.sluice, point.undici]) await measure(send, point.concurrency, 0.5);
      const runs = {
        sluice: [] as Awaited<ReturnType<typeof measure>>[],
        undici: [] as Awaited<ReturnType<typeof measure>>[],
      };
      for (let round = 0; round < options.rounds; round++) {
        for (const which of round % 2 ? (['undici', 'sluice'] as const) : (['sluice', 'undici'] as const)) {
          global.gc?.();
          const base = process.memoryUsage().rss;
          const run = await measure(point[which], point.concurrency, options.seconds);
          runs[which].push({ ...run, peak: run.peak - base });
        }
      }
      const rps = (which: 'sluice' | 'undici') => median(runs[which].map((run) => run.rps));
      const gc = (which: 'sluice' | 'undici') => median(runs[which].map((run) => run.gc));
      // Each round measures both clients back to back: the ratio is the median of the rounds' own
      // ratios, so a drift in the machine's speed between rounds cancels instead of landing on one side.
      const paired = (of: (run: Awaited<ReturnType<typeof measure>>) => number) =>
        median(runs.sluice.map((run, round) => of(run) / of(runs.undici[round]!)));
      const rss = (which: 'sluice' | 'undici') =>
        Math.max(0, ...runs[which].map((run) => run.peak)) / 1024 / point.concurrency;
      results.push({
        curve: point.curve,
        label: point.label,
        concurrency: point.concurrency,
        undici: rps('undici'),
        sluice: rps('sluice'),
        ratio: paired((run) => run.rps),
        cpuRatio: paired((run) => run.cpu),
        rssPerInFlight: { sluice: rss('sluice'), undici: rss('undici') },
        gcPerRequest: { sluice: gc('sluice'), undici: gc('undici') },
      });
      process.stdout.write(`  ${point.curve} ${point.label} done\n`);
    }
  } finally {
    gcObserver.disconnect();
    await api.close();
    await agent.close();
    server.close();
  }
  return results;
}

export function curveTable(results: CurveResult[]): string {
  const reference = results.find((result) => result.label === 'c=64')!;
  return table(
    [
      'curve',
      'point',
      'concurrency',
      'undici req/s',
      'sluice req/s',
      'sluice / undici',
      'vs 200 B, c=64',
      'CPU x undici',
      'GC pause µs/req (sluice / undici)',
      'peak RSS KB per in-flight (sluice / undici)',
    ],
    results.map((result) => [
      result.curve,
      result.label,
      result.concurrency,
      result.undici.toFixed(0),
      result.sluice.toFixed(0),
      result.ratio.toFixed(2),
      `${((100 * result.ratio) / reference.ratio - 100).toFixed(0)}%`,
      result.cpuRatio.toFixed(2),
      `${result.gcPerRequest.sluice.toFixed(1)} / ${result.gcPerRequest.undici.toFixed(1)}`,
      `${result.rssPerInFlight.sluice.toFixed(0)} / ${result.rssPerInFlight.undici.toFixed(0)}`,
    ]),
  );
}
