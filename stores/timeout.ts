import { SluiceError, StoreUnavailableError } from '../src/errors.js';

/** `setTimeout` fires at once above 2^31-1 ms: every wait here is clamped below that. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const clampTimer = (ms: number) => Math.min(Math.max(0, ms), MAX_TIMER_MS);

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
    if (error instanceof StoreUnavailableError) throw error;
    if (error instanceof SluiceError) throw error;
    throw new StoreUnavailableError(`${operation} failed`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, clampTimer(ms)));
