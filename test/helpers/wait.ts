import type { Middleware } from '../../src/index.js';

/**
 * Resolves once `condition()` holds, checking between turns of the event loop (so real sockets make
 * progress even under fake timers). Fails after `ms` of real time.
 */
export async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const end = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A middleware that counts the requests passing through it (put it last: it counts wire attempts). */
export function counter(): Middleware & { count: number } {
  const count: Middleware & { count: number } = Object.assign(
    function countRequests(...[request, next]: Parameters<Middleware>) {
      count.count++;
      return next(request);
    },
    { count: 0 },
  );
  return count;
}

/** The rejection reason of `promise`; fails when it resolves instead. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}
