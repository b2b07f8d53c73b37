/**
 * The Sluice the bench measures: the built package (`dist/`, what an application runs), not the
 * TypeScript sources through tsx, whose transform adds a naming wrapper to every closure it creates.
 * `npm run bench` builds first; `SLUICE_BENCH_SOURCE=1` measures the sources instead, and
 * `SLUICE_BENCH_DIST=/path/to/dist` another build (an older commit's, for a before/after).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as Main from '../src/index.js';
import type * as Stores from '../stores/index.js';

const fromSource = process.env.SLUICE_BENCH_SOURCE === '1';
const dist = pathToFileURL(
  `${resolve(process.env.SLUICE_BENCH_DIST ?? fileURLToPath(new URL('../dist', import.meta.url)))}/`,
);
const from = (path: string) => (fromSource ? new URL(`../${path}`, import.meta.url) : new URL(path, dist)).href;
if (!fromSource && !existsSync(new URL('src/index.js', dist)))
  throw new Error('bench: run `npm run build` first (or set SLUICE_BENCH_SOURCE=1)');

export const sluice = (await import(from('src/index.js'))) as typeof Main;
export const sluiceStores = (await import(from('stores/index.js'))) as typeof Stores;
export const measured = fromSource ? 'sources (tsx)' : `built package (${fileURLToPath(dist)})`;
