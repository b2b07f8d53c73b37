import { ConfigError, SluiceError, StoreUnavailableError } from '../src/errors.js';
import type { AcquireOptions } from '../src/store.js';
import { clampDelay } from '../src/timers.js';

/** `setTimeout` fires at once above 2^31-1 ms: every wait here is clamped below that. */
export const clampTimer = clampDelay;

/**
 * Bounds one store or lock call in time and turns every failure into `StoreUnavailableError`.
 * `operation` names what was tried ("token store read"); it never includes a key or a value.
 */
export async function bounded<T>(operation: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StoreUnavailableError(`${operation} timed out after ${timeoutMs} ms`)),
      clampTimer(timeoutMs),
    );
    timer.unref();
  });
  try {
    return await Promise.race([work(), deadline]);
  } catch (error) {
    if (error instanceof SluiceError) throw error;
    throw new StoreUnavailableError(`${operation} failed`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export { sleep } from '../src/timers.js';

/** The pause before poll `round` (0-based): exponential from `first` up to `most`, with jitter over its upper half. */
export function backoff(round: number, [first, most]: readonly [number, number]): number {
  const step = Math.min(most, first * 2 ** Math.min(round, 16));
  return step / 2 + Math.random() * (step / 2);
}

/** Rejects nonsense once, where the lock is asked, instead of letting a server answer with a puzzling error. */
export function checkAcquire(by: string, { ttlMs, waitMs }: AcquireOptions): void {
  if (!(ttlMs >= 1 && Number.isFinite(ttlMs))) throw new ConfigError(`${by}: ttlMs must be at least 1, got ${ttlMs}`);
  if (!(waitMs >= 0)) throw new ConfigError(`${by}: waitMs must be 0 or more, got ${waitMs}`);
}

export function checkPoll(by: string, poll: readonly [number, number]): void {
  const [first, most] = poll;
  if (!(first >= 1 && most >= first && Number.isFinite(most)))
    throw new ConfigError(`${by}: poll must be [first, most] with 1 <= first <= most, got [${poll.join(', ')}]`);
}

/** True when `work` settles (either way) within `ms`; never rejects, and leaves no timer behind. */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), clampTimer(ms));
  });
  const settled = work.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
