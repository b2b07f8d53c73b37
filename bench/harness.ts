import { type ChildProcess, fork } from 'node:child_process';

export interface Counts {
  auth: { token: number; refresh: number; reuse: number; rejected: number; received: number };
  api: { requests: number; ok: number; unauthorized: number };
}

export interface ServerProcess {
  api: string;
  tokenURL: string;
  counts(): Promise<Counts>;
  revoke(): Promise<Counts>;
  close(): Promise<void>;
}

/** Starts bench/servers.ts in its own process. */
export async function startServers(
  options: { lifetime?: number; refreshTokens?: boolean; delay?: number } = {},
): Promise<ServerProcess> {
  const child: ChildProcess = fork(new URL('./servers.ts', import.meta.url), [JSON.stringify(options)], {
    execArgv: ['--import', 'tsx'],
  });
  const ready = await new Promise<{ api: string; tokenURL: string }>((resolve, reject) => {
    child.once('message', (message) => resolve(message as { api: string; tokenURL: string }));
    child.once('exit', (code) => reject(new Error(`bench servers exited with ${code}`)));
  });
  let next = 0;
  const ask = (command: 'counts' | 'revoke') =>
    new Promise<Counts>((resolve) => {
      const id = ++next;
      const onMessage = (message: { id?: number; counts?: Counts }) => {
        if (message.id !== id || !message.counts) return;
        child.off('message', onMessage);
        resolve(message.counts);
      };
      child.on('message', onMessage);
      child.send({ id, command });
    });
  return {
    api: ready.api,
    tokenURL: ready.tokenURL,
    counts: () => ask('counts'),
    revoke: () => ask('revoke'),
    close: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send({ id: 0, command: 'close' });
        setTimeout(() => child.kill('SIGKILL'), 2000).unref();
      }),
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [
    line(headers),
    `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`,
    ...cells.slice(1).map(line),
  ].join('\n');
}

export interface Burst {
  latencies: number[];
  failures: number;
}

/** `concurrency` requests at once; their latencies (ms) and how many failed. */
export async function burst(get: (path: string) => Promise<unknown>, concurrency: number): Promise<Burst> {
  const latencies: number[] = [];
  let failures = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      const sent = performance.now();
      try {
        await get(`items/${i}`);
        latencies.push(performance.now() - sent);
      } catch {
        failures++;
      }
    }),
  );
  return { latencies, failures };
}
