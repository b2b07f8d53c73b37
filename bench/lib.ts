/**
 * The Sluice the bench measures: the built package (`dist/`, what an application runs), not the
 * TypeScript sources through tsx, whose transform adds a naming wrapper to every closure it creates.
 * `npm run bench` builds first; `SLUICE_BENCH_SOURCE=1` measures the sources instead.
 */
import { existsSync } from 'node:fs';
import type * as Main from '../src/index.js';
import type * as Stores from '../stores/index.js';

const fromSource = process.env.SLUICE_BENCH_SOURCE === '1';
const built = new URL('../dist/src/index.js', import.meta.url);
if (!fromSource && !existsSync(built))
  throw new Error('bench: run `npm run build` first (or set SLUICE_BENCH_SOURCE=1)');

export const sluice = (await import(fromSource ? '../src/index.js' : '../dist/src/index.js')) as typeof Main;
export const sluiceStores = (await import(
  fromSource ? '../stores/index.js' : '../dist/stores/index.js'
)) as typeof Stores;
export const measured = fromSource ? 'sources (tsx)' : 'built package (dist/)';
