/**
 * Bytes the JavaScript heap allocates per request, and collections per 1,000 requests, for Sluice and
 * its peers: V8's `--trace-gc-nvp` reports the bytes allocated since the previous collection at every
 * collection; their sum over a run of N requests (after a warm-up), divided by N. Counts the whole
 * process (the bench loop included, the same for every client).
 */
import { spawn } from 'node:child_process';

export interface Allocation {
  name: string;
  bytesPerRequest: number;
  collectionsPer1000: number;
}

export async function allocations(name: string, requests = 50_000): Promise<Allocation> {
  const child = spawn(
    process.execPath,
    [
      '--trace-gc-nvp',
      '--import',
      'tsx',
      new URL('./alloc-worker.ts', import.meta.url).pathname,
      name,
      String(requests),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
  );
  let text = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    text += chunk;
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const start = text.indexOf('\nSTART\n');
  const end = text.indexOf('\nEND\n');
  if (code !== 0 || start < 0 || end < 0) throw new Error(`allocation run of ${name} failed (exit ${code})`);
  let bytes = 0;
  let collections = 0;
  for (const line of text.slice(start, end).split('\n')) {
    const allocated = /\ballocated=(\d+)/.exec(line);
    if (!allocated) continue;
    bytes += Number(allocated[1]);
    collections++;
  }
  return { name, bytesPerRequest: bytes / requests, collectionsPer1000: (collections * 1000) / requests };
}
