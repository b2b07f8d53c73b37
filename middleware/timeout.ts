import { AbortError, ConfigError, TimeoutError } from '../src/errors.js';
import { toSluiceError } from '../src/normalize.js';
import type { HttpRequest } from '../src/request.js';
import type { HttpResponse } from '../src/response.js';
import type { Middleware, Next } from '../src/types.js';

/** `setTimeout` fires at once for anything above this; every delay is clamped to it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function clampDelay(ms: number): number {
  return Math.max(0, Math.min(ms, MAX_TIMER_MS));
}

export function checkDuration(name: string, value: number | undefined): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new ConfigError(`${name} must be a positive number of milliseconds (or Infinity), got ${String(value)}`);
  }
}

/**
 * Runs one attempt with a fresh timer: never an already-fired signal. The timer covers the response
 * body too and is cleared once the body is read or discarded. `deadlineAt` is a `performance.now()`
 * instant for the whole call; whichever limit is nearer fires, and the error says which.
 */
export async function runAttempt(
  request: HttpRequest,
  next: Next,
  timeoutMs: number,
  deadlineAt: number,
  deadlineMs: number,
): Promise<HttpResponse> {
  const remaining = deadlineAt - performance.now();
  if (remaining <= 0) throw new TimeoutError('total', deadlineMs, { method: request.method, url: request.url });
  const kind = timeoutMs <= remaining ? 'attempt' : 'total';
  const ms = kind === 'attempt' ? timeoutMs : remaining;
  if (ms === Number.POSITIVE_INFINITY) return next(request);

  const parent = request.signal;
  if (parent?.aborted) throw toSluiceError(parent.reason, request, parent);
  const controller = new AbortController();
  const timer = setTimeout(() => {
    const limit = kind === 'attempt' ? timeoutMs : deadlineMs;
    controller.abort(new TimeoutError(kind, limit, { method: request.method, url: request.url }));
  }, clampDelay(ms));
  timer.unref();
  const onAbort = () =>
    controller.abort(new AbortError({ method: request.method, url: request.url, cause: parent?.reason }));
  parent?.addEventListener('abort', onAbort, { once: true });
  const cleanup = () => {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onAbort);
  };
  try {
    const response = await next(request.with({ signal: controller.signal }));
    response.onSettled(cleanup);
    return response;
  } catch (error) {
    cleanup();
    throw toSluiceError(error, request, controller.signal);
  }
}

export interface TimeoutOptions {
  /** Per attempt, in ms. @default 30000 */
  timeout?: number;
  /** Whole call, in ms. @default Infinity */
  deadline?: number;
}

/** Timeouts alone, for a chain without `retry()` (which already applies them per attempt). */
export function timeout({ timeout = 30_000, deadline = Number.POSITIVE_INFINITY }: TimeoutOptions = {}): Middleware {
  checkDuration('timeout', timeout);
  checkDuration('deadline', deadline);
  return function withTimeout(request, next) {
    const total = request.options.deadline ?? deadline;
    return runAttempt(request, next, request.options.timeout ?? timeout, performance.now() + total, total);
  };
}
