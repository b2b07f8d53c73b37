import type { Adapter } from './adapters.js';
import { median, percentile } from './harness.js';

export interface Result {
  name: string;
  concurrency: number;
  rps: number;
  p50: number;
  p99: number;
  failures: number;
  /** This process's CPU time (user + system) per request, in µs: median over rounds. */
  cpu: number;
}

/** Runs `adapter` with `concurrency` loops for `seconds`; every response is JSON-parsed by the adapter. */
async function burst(adapter: Adapter, concurrency: number, seconds: number) {
  const latencies: number[] = [];
  let failures = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      while (performance.now() < until) {
        const sent = performance.now();
        try {
          await adapter.get(`items/${loop}`);
          latencies.push(performance.now() - sent);
        } catch {
          failures++;
        }
      }
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  return {
    count: latencies.length,
    elapsed: (performance.now() - started) / 1000,
    latencies,
    failures,
    cpuPerRequest: (cpu.user + cpu.system) / Math.max(1, latencies.length),
  };
}

/**
 * Clients interleaved in rounds (A B C ... A B C ...) so that drift in the machine hits all of them
 * alike; throughput is the median over rounds, latency percentiles come from all rounds' samples.
 */
export async function throughput(
  adapters: Adapter[],
  concurrency: number,
  rounds: number,
  seconds: number,
): Promise<Result[]> {
  for (const adapter of adapters) await burst(adapter, concurrency, Math.min(1, seconds));
  const perAdapter = adapters.map(() => ({
    rps: [] as number[],
    cpu: [] as number[],
    latencies: [] as number[],
    failures: 0,
  }));
  for (let round = 0; round < rounds; round++) {
    for (const [index, adapter] of adapters.entries()) {
      const run = await burst(adapter, concurrency, seconds);
      const entry = perAdapter[index]!;
      entry.rps.push(run.count / run.elapsed);
      entry.cpu.push(run.cpuPerRequest);
      entry.failures += run.failures;
      for (let i = 0; i < run.latencies.length; i += Math.ceil(run.latencies.length / 20_000))
        entry.latencies.push(run.latencies[i]!);
    }
    process.stdout.write(`  c=${concurrency} round ${round + 1}/${rounds} done\n`);
  }
  return adapters.map((adapter, index) => {
    const entry = perAdapter[index]!;
    const sorted = entry.latencies.sort((a, b) => a - b);
    return {
      name: adapter.name,
      concurrency,
      rps: median(entry.rps),
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      failures: entry.failures,
      cpu: median(entry.cpu),
    };
  });
}
