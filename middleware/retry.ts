import pRetry from 'p-retry';
import { canResend } from '../src/body.js';
import { after, builtIn } from '../src/compose.js';
import {
  AbortError,
  AuthError,
  ConfigError,
  NetworkError,
  type SluiceError,
  StoreUnavailableError,
} from '../src/errors.js';
import { toSluiceError } from '../src/normalize.js';
import { checkNames, own } from '../src/own.js';
import { redactUrl } from '../src/redact.js';
import type { HttpRequest } from '../src/request.js';
import { type HttpResponse, parseDelaySeconds, parseRetryAfter } from '../src/response.js';
import type { Middleware, Next } from '../src/types.js';
import { checkDuration, clampDelay, runAttempt } from './timeout.js';

export interface RetryDecision {
  request: HttpRequest;
  /** The failed attempt's response, when there was one. */
  response: HttpResponse | undefined;
  /** The failed attempt's error, when there was no response. */
  error: SluiceError | undefined;
  /** 1 for the first attempt. */
  attempt: number;
  /** The wait Sluice would use, in ms. */
  delay: number;
}

export interface RetryOptions {
  /** Retries after the first attempt. @default 2 */
  limit?: number | undefined;
  /**
   * Methods retried without an Idempotency-Key. Other methods are retried only when nothing was sent
   * (`NetworkError` with `sent: false`: refused, DNS, connect timeout). @default ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']
   */
  methods?: readonly string[] | undefined;
  /** Statuses that are retried. @default [408, 429, 500, 502, 503, 504] */
  statuses?: readonly number[] | undefined;
  /** First backoff step in ms; the wait is random in [0, min(maxDelay, baseDelay * 2^n)]. @default 300 */
  baseDelay?: number | undefined;
  /** @default 10000 */
  maxDelay?: number | undefined;
  /** A Retry-After (or RateLimit-Reset) longer than this fails at once instead of waiting. @default 60000 */
  maxRetryAfter?: number | undefined;
  /** Per-attempt timeout in ms, a fresh timer for each attempt. @default 30000 */
  timeout?: number | undefined;
  /** Total deadline across all attempts and waits, in ms. @default Infinity */
  deadline?: number | undefined;
  /** Last word on a retry Sluice would make; return false to stop. */
  shouldRetry?: ((decision: RetryDecision) => boolean | Promise<boolean>) | undefined;
  /** Source of randomness for the jitter, for tests. @default Math.random */
  random?: (() => number) | undefined;
}

/** Remaining requests the server reports (`X-RateLimit-Remaining`, `RateLimit-Remaining`, `RateLimit: ...;r=N`). */
function remaining(response: HttpResponse): number | undefined {
  const plain = response.header('x-ratelimit-remaining') ?? response.header('ratelimit-remaining');
  const value = plain ?? /(?:^|[;,\s])r=(\d{1,12})(?![\w.])/.exec(response.header('ratelimit') ?? '')?.[1];
  return value !== undefined && /^\s*\d{1,12}\s*$/.test(value) ? Number(value) : undefined;
}

/**
 * A refusal that is a rate limit: a 429, or a 403 whose limit is spent (remaining 0) or that says
 * when to come back (`Retry-After`), as GitHub's primary and secondary limits are.
 */
export function isRateLimit(response: HttpResponse): boolean {
  if (response.status === 429) return true;
  return response.status === 403 && (remaining(response) === 0 || response.header('retry-after') !== null);
}

/**
 * The wait a response asks for, in ms: `Retry-After` (seconds or HTTP date); else, only when the limit
 * is spent (429, or remaining 0), `RateLimit-Reset` / `X-RateLimit-Reset` / `RateLimit: ...;t=N` (whole
 * seconds; an epoch timestamp in seconds is read as such). On any other response these headers are
 * information, never a wait: a 502 from an API that reports its quota is retried as usual. Malformed
 * values are ignored (draft-ietf-httpapi-ratelimit-headers: they MUST be).
 */
export function retryAfterMs(response: HttpResponse, now = Date.now()): number | undefined {
  const asked = parseRetryAfter(response.header('retry-after'), now);
  if (asked !== undefined) return asked;
  if (response.status !== 429 && remaining(response) !== 0) return undefined;
  const structured = /(?:^|[;,\s])t=(\d{1,12})(?![\w.])/.exec(response.header('ratelimit') ?? '')?.[1] ?? null;
  const reset = parseDelaySeconds(
    response.header('ratelimit-reset') ?? response.header('x-ratelimit-reset') ?? structured,
  );
  // x-ratelimit-reset is sometimes an epoch timestamp (in seconds) rather than a delta.
  return reset !== undefined && reset > 1e12 ? Math.max(0, reset - now) : reset;
}

/** Answers the client-side pacer made up: nothing was sent, so any method may try again after the wait. */
export const PACED = new WeakSet<HttpResponse>();

/** A response that should be retried, thrown so that p-retry sees a failed attempt. */
class RetryableResponse extends Error {
  readonly response: HttpResponse;
  constructor(response: HttpResponse) {
    super(`retryable status ${response.status}`);
    this.response = response;
  }
}

function sleep(ms: number, request: HttpRequest): Promise<void> {
  const signal = request.signal;
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError({ method: request.method, url: request.url, cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, clampDelay(ms));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

const IDEMPOTENT = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'];
const RETRY_STATUSES = [408, 429, 500, 502, 503, 504];

const RETRY_OPTIONS: ReadonlySet<string> = new Set([
  'limit',
  'methods',
  'statuses',
  'baseDelay',
  'maxDelay',
  'maxRetryAfter',
  'timeout',
  'deadline',
  'shouldRetry',
  'random',
]);

/** One call's retry settings, carried with its first answer. */
class RetryCall {
  readonly request: HttpRequest;
  readonly next: Next;
  readonly attemptMs: number;
  readonly deadlineAt: number;
  readonly totalMs: number;
  readonly retries: number;
  readonly idempotent: boolean;
  readonly keyed: boolean;
  constructor(
    request: HttpRequest,
    next: Next,
    attemptMs: number,
    deadlineAt: number,
    totalMs: number,
    retries: number,
    idempotent: boolean,
    keyed: boolean,
  ) {
    this.request = request;
    this.next = next;
    this.attemptMs = attemptMs;
    this.deadlineAt = deadlineAt;
    this.totalMs = totalMs;
    this.retries = retries;
    this.idempotent = idempotent;
    this.keyed = keyed;
  }
}

export function retry(given: RetryOptions = {}): Middleware {
  const options = own(given);
  checkNames('retry', options, RETRY_OPTIONS);
  const {
    limit = 2,
    methods = IDEMPOTENT,
    statuses = RETRY_STATUSES,
    baseDelay = 300,
    maxDelay = 10_000,
    maxRetryAfter = 60_000,
    timeout = 30_000,
    deadline = Number.POSITIVE_INFINITY,
    shouldRetry,
    random = Math.random,
  } = options;
  if (!Number.isInteger(limit) || limit < 0)
    throw new ConfigError(`retry.limit must be a non-negative integer, got ${limit}`);
  for (const [name, value] of Object.entries({ baseDelay, maxDelay, maxRetryAfter })) {
    if (typeof value !== 'number' || !(value >= 0)) throw new ConfigError(`retry.${name} must be >= 0, got ${value}`);
  }
  checkDuration('timeout', timeout);
  checkDuration('deadline', deadline);
  const methodSet = new Set(methods.map((method) => method.toUpperCase()));
  const statusSet = new Set(statuses);
  // 409 with an Idempotency-Key: a request with the same key is still being processed; ask again.
  const retryable = (response: HttpResponse, idempotent: boolean, keyed: boolean) =>
    (idempotent && (statusSet.has(response.status) || (keyed && response.status === 409) || isRateLimit(response))) ||
    PACED.has(response);

  // Not async: while the first answer is awaited, a call holds a step on the answer, not a suspended function.
  return builtIn(function retrying(request, next) {
    const attemptMs = request.options.timeout ?? timeout;
    const totalMs = request.options.deadline ?? deadline;
    const deadlineAt = performance.now() + totalMs;
    const retries = request.options.retry ?? limit;
    if (retries === 0) return runAttempt(request, next, attemptMs, deadlineAt, totalMs);
    const keyed = request.header('idempotency-key') !== null;
    const idempotent = keyed || methodSet.has(request.method);
    // The first attempt runs directly, before anything else is built: p-retry's set-up costs more than
    // the rest of the chain, and nearly every call succeeds at once. p-retry takes over from the first
    // failure.
    const call = new RetryCall(request, next, attemptMs, deadlineAt, totalMs, retries, idempotent, keyed);
    return after(
      runAttempt(request, next, attemptMs, deadlineAt, totalMs),
      next,
      answered,
      retryAfter,
      call,
      undefined,
    );
  });

  // The first attempt's step on an answer (made once here): the call's settings come with it.
  function answered(response: HttpResponse, call: RetryCall): HttpResponse | Promise<HttpResponse> {
    return retryable(response, call.idempotent, call.keyed)
      ? retryAfter(new RetryableResponse(response), call)
      : response;
  }

  // After a failed first attempt only: the closures here cost every call a heap context otherwise.
  async function retryAfter(first: unknown, call: RetryCall): Promise<HttpResponse> {
    const { request, next, attemptMs, deadlineAt, totalMs, retries, idempotent, keyed } = call;
    const decide = async (failure: unknown, attempt: number): Promise<boolean> => {
      const response = failure instanceof RetryableResponse ? failure.response : undefined;
      const error = response ? undefined : toSluiceError(failure, request, request.signal);
      if (error && (!error.retryable || error instanceof AbortError)) return false;
      // Anything that may have reached the server is sent again only when that is safe; a request the
      // client-side pacer held back was never sent.
      const unsent = (error instanceof NetworkError && !error.sent) || (response !== undefined && PACED.has(response));
      if (!idempotent && !unsent) return false;
      // The store and its lock wait had their own deadline already, and the token endpoint has its own
      // retries (auth.retry): retrying the call would multiply them.
      if (error instanceof StoreUnavailableError || error instanceof AuthError) return false;
      const event = { requestId: request.state.id, method: request.method, url: redactUrl(request.url), attempt };
      if (!canResend(request)) {
        request.events?.({
          type: 'retry-skipped',
          ...event,
          reason: 'body is a one-shot stream and cannot be re-sent',
        });
        return false;
      }
      const asked = response ? retryAfterMs(response) : undefined;
      if (asked !== undefined && asked > maxRetryAfter) {
        request.events?.({
          type: 'retry-skipped',
          ...event,
          reason: `Retry-After ${asked} ms is over the ${maxRetryAfter} ms cap`,
        });
        return false;
      }
      const delay = asked ?? random() * Math.min(maxDelay, baseDelay * 2 ** (attempt - 1));
      if (performance.now() + delay >= deadlineAt) {
        request.events?.({ type: 'retry-skipped', ...event, reason: 'the wait would pass the deadline' });
        return false;
      }
      if (shouldRetry && !(await shouldRetry({ request, response, error, attempt, delay }))) return false;
      await response?.discard();
      const reason = response ? `status ${response.status}` : (error?.code ?? 'error');
      request.events?.({ type: 'retry', ...event, reason, delayMs: Math.round(delay) });
      await sleep(delay, request);
      return true;
    };

    const attempt = async () => {
      const response = await runAttempt(request, next, attemptMs, deadlineAt, totalMs);
      if (retryable(response, idempotent, keyed)) throw new RetryableResponse(response);
      return response;
    };
    try {
      if (!(await decide(first, 1))) throw first;
      return await pRetry(attempt, {
        retries: retries - 1,
        minTimeout: 0,
        maxTimeout: 0,
        shouldRetry: ({ error, attemptNumber }) => decide(error, attemptNumber + 1),
      });
    } catch (error) {
      if (error instanceof RetryableResponse) return error.response;
      throw toSluiceError(error, request, request.signal);
    }
  }
}
