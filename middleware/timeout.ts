import { after, builtIn, forward } from '../src/compose.js';
import { ConfigError, TimeoutError } from '../src/errors.js';
import { toSluiceError } from '../src/normalize.js';
import { own } from '../src/own.js';
import type { HttpRequest } from '../src/request.js';
import { buffered, type HttpResponse } from '../src/response.js';
import { clampDelay } from '../src/timers.js';
import type { Middleware, Next } from '../src/types.js';

/** Largest body read into memory when the call does not say (`maxResponseBytes`): 64 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export { clampDelay, MAX_TIMER_MS } from '../src/timers.js';

export function checkDuration(name: string, value: number | undefined): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new ConfigError(`${name} must be a positive number of milliseconds (or Infinity), got ${String(value)}`);
  }
}

/**
 * Runs one attempt under a fresh time limit (never an already-fired signal). The limit travels on the
 * request as an end instant: the token wait, the connection, the headers and (unless the body is handed
 * out as a stream) the whole body must fit before it. The body is read here, inside the attempt, so a
 * reset or a stall mid-body is a typed error the retry middleware can act on, and no partial body is
 * ever returned. `deadlineAt` is a `performance.now()` instant for the whole call; whichever limit is
 * nearer applies, and the `TimeoutError` says which.
 */
export function runAttempt(
  request: HttpRequest,
  next: Next,
  timeoutMs: number,
  deadlineAt: number,
  deadlineMs: number,
): Promise<HttpResponse> {
  const now = performance.now();
  const remaining = deadlineAt - now;
  if (remaining <= 0)
    return Promise.reject(new TimeoutError('total', deadlineMs, { method: request.method, url: request.url }));
  if (request.signal?.aborted) return Promise.reject(toSluiceError(request.signal.reason, request, request.signal));
  const kind = timeoutMs <= remaining ? 'attempt' : 'total';
  const ms = kind === 'attempt' ? timeoutMs : remaining;
  const timed =
    ms === Number.POSITIVE_INFINITY
      ? request
      : request.with({
          timeout: {
            ms: clampDelay(Math.ceil(ms)),
            end: now + ms,
            kind,
            limit: kind === 'attempt' ? timeoutMs : deadlineMs,
          },
        });
  // Not async: while the answer is awaited, a call holds a step on the answer, not a suspended function.
  const sent = forward(next, timed);
  if (request.options.streamBody) return sent;
  const maxBytes = request.options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  return after(sent, next, bodyRead, undefined, maxBytes, request.options.textBody === true);
}

/**
 * The answer with its body read into memory (up to `maxBytes`; as text when the caller reads text),
 * unless it is an error status.
 */
function bodyRead(response: HttpResponse, maxBytes: number, asText: boolean): HttpResponse | Promise<HttpResponse> {
  return response.status < 400 ? buffered(response, maxBytes, asText) : response;
}

export interface TimeoutOptions {
  /** Per attempt, in ms. @default 30000 */
  timeout?: number;
  /** Whole call, in ms. @default Infinity */
  deadline?: number;
}

/** Timeouts alone, for a chain without `retry()` (which already applies them per attempt). */
export function timeout(options: TimeoutOptions = {}): Middleware {
  const { timeout = 30_000, deadline = Number.POSITIVE_INFINITY } = own(options);
  checkDuration('timeout', timeout);
  checkDuration('deadline', deadline);
  return builtIn(function withTimeout(request, next) {
    const total = request.options.deadline ?? deadline;
    return runAttempt(request, next, request.options.timeout ?? timeout, performance.now() + total, total);
  });
}
