/** Timer helpers shared by the transports, the middleware and the stores. */

/** `setTimeout` fires at once for anything above this; every delay is clamped to it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function clampDelay(ms: number): number {
  return Math.max(0, Math.min(ms, MAX_TIMER_MS));
}

/** Waits `ms`; an abort ends the wait early, without an error (the caller checks its signal next). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, clampDelay(ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}
