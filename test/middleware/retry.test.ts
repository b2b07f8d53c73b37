import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type RetryOptions, retry, retryAfterMs } from '../../middleware/retry.js';
import {
  AbortError,
  ConfigError,
  HttpRequest,
  type HttpRequestInit,
  type HttpResponse,
  NetworkError,
  ParseError,
  SluiceError,
  type SluiceEvent,
  StoreUnavailableError,
  TimeoutError,
} from '../../src/index.js';
import { harness, respond, type Step, scripted } from '../helpers/http.js';

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1, 12, 0, 0) });
});
afterEach(() => {
  vi.useRealTimers();
});

const network = () => new NetworkError('network error ECONNRESET', { code: 'ECONNRESET', retryable: true });
const retries = (events: SluiceEvent[]) =>
  events.filter((event): event is Extract<SluiceEvent, { type: 'retry' }> => event.type === 'retry');
const skipped = (events: SluiceEvent[]) =>
  events.filter((event): event is Extract<SluiceEvent, { type: 'retry-skipped' }> => event.type === 'retry-skipped');

/** Runs one call through retry() over the scripted steps, driving the fake clock until it settles. */
async function run(options: RetryOptions, steps: Step[], init: Partial<HttpRequestInit> = {}) {
  const script = scripted(...steps);
  const { call, events } = harness([retry({ random: () => 1, ...options })], script.send);
  let outcome: { response?: HttpResponse; error?: unknown } | undefined;
  const settled = call(init).then(
    (response) => {
      outcome = { response };
    },
    (error: unknown) => {
      outcome = { error };
    },
  );
  const started = Date.now();
  while (!outcome) await vi.runOnlyPendingTimersAsync();
  await settled;
  return { ...outcome, events, requests: script.requests, responses: script.responses, elapsed: Date.now() - started };
}

describe('which requests are retried', () => {
  it.each(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])('%s is retried by default', async (method) => {
    const { response, requests } = await run({}, [503, 503, 200], { method });
    expect(response?.status).toBe(200);
    expect(requests).toHaveLength(3);
  });

  it.each(['POST', 'PATCH'])('%s is not, unless it carries an Idempotency-Key', async (method) => {
    const plain = await run({}, [503, 200], { method });
    expect(plain.response?.status).toBe(503);
    expect(plain.requests).toHaveLength(1);
    const keyed = await run({}, [503, 200], { method, headers: new Headers({ 'Idempotency-Key': 'k' }) });
    expect(keyed.response?.status).toBe(200);
    expect(keyed.requests).toHaveLength(2);
  });

  it('the methods list is configurable', async () => {
    const { requests } = await run({ methods: ['post'] }, [503, 200], { method: 'POST' });
    expect(requests).toHaveLength(2);
    const get = await run({ methods: ['POST'] }, [503, 200]);
    expect(get.requests).toHaveLength(1);
  });

  it.each([408, 429, 500, 502, 503, 504])('status %i is retried', async (status) => {
    const { response, requests } = await run({}, [status, 200]);
    expect(response?.status).toBe(200);
    expect(requests).toHaveLength(2);
  });

  it.each([400, 401, 403, 404, 409, 501])('status %i is not', async (status) => {
    const { response, requests } = await run({}, [status, 200]);
    expect(response?.status).toBe(status);
    expect(requests).toHaveLength(1);
  });

  it('the statuses list is configurable', async () => {
    expect((await run({ statuses: [409] }, [409, 200])).requests).toHaveLength(2);
    expect((await run({ statuses: [409] }, [503, 200])).requests).toHaveLength(1);
  });

  it('a store that is unavailable is not waited out again: its own deadline and lock wait were the wait', async () => {
    const down = await run({}, [new StoreUnavailableError('no refresh within 20000 ms'), 200]);
    expect(down.error).toBeInstanceOf(StoreUnavailableError);
    expect(down.requests).toHaveLength(1);
  });

  it('a retryable error is retried; one that is not, or an abort, is thrown at once', async () => {
    const reset = await run({}, [network(), 200]);
    expect(reset.response?.status).toBe(200);
    expect(retries(reset.events)[0]?.reason).toBe('ECONNRESET');
    const timeout = await run({}, [new TimeoutError('attempt', 5), 200]);
    expect(timeout.requests).toHaveLength(2);

    const parse = await run({}, [new ParseError('bad', ''), 200]);
    expect(parse.error).toBeInstanceOf(ParseError);
    expect(parse.requests).toHaveLength(1);
    const abort = await run({}, [new AbortError(), 200]);
    expect(abort.error).toBeInstanceOf(AbortError);
    expect(abort.requests).toHaveLength(1);
    const foreign = await run({}, [new RangeError('bug'), 200]);
    expect(foreign.error).toBeInstanceOf(SluiceError);
    expect((foreign.error as SluiceError).code).toBe('ERR_REQUEST');
    expect(foreign.requests).toHaveLength(1);
  });
});

describe('how many times', () => {
  it('limit retries after the first attempt, then hands back the last response', async () => {
    const { response, requests, responses } = await run({ limit: 3 }, [503]);
    expect(requests).toHaveLength(4);
    expect(response?.status).toBe(503);
    expect(response).toBe(responses[3]);
    // One call, one ledger: every copy of the request shares it.
    expect(new Set(requests.map((request) => request.state)).size).toBe(1);
    expect(requests[0]?.state.attempts).toBe(4);
  });

  it('the last error is thrown when every attempt failed', async () => {
    const { error, requests } = await run({ limit: 2 }, [network()]);
    expect(error).toBeInstanceOf(NetworkError);
    expect(requests).toHaveLength(3);
  });

  it('a per-call retry count overrides the limit; 0 sends once', async () => {
    expect((await run({ limit: 5 }, [503], { options: { retry: 1 } })).requests).toHaveLength(2);
    expect((await run({ limit: 5 }, [503], { options: { retry: 0 } })).requests).toHaveLength(1);
    expect((await run({ limit: 0 }, [503])).requests).toHaveLength(1);
  });

  it('discards the body of every response it throws away', async () => {
    const { responses } = await run({ limit: 2 }, [503, 503, 200]);
    expect(responses.map((response) => response.dumped())).toEqual([1, 1, 0]);
  });
});

describe('how long it waits', () => {
  it('exponential backoff with full jitter: random * min(maxDelay, baseDelay * 2^n)', async () => {
    const top = await run({ limit: 5, baseDelay: 100, maxDelay: 500 }, [503]);
    expect(retries(top.events).map((event) => event.delayMs)).toEqual([100, 200, 400, 500, 500]);
    expect(top.elapsed).toBe(1700);
    const half = await run({ limit: 3, baseDelay: 100, random: () => 0.5 }, [503]);
    expect(retries(half.events).map((event) => event.delayMs)).toEqual([50, 100, 200]);
    expect(half.elapsed).toBe(350);
  });

  it('defaults: 300 ms base', async () => {
    const { events } = await run({ limit: 2 }, [503]);
    expect(retries(events).map((event) => event.delayMs)).toEqual([300, 600]);
  });

  it.each([
    ['Retry-After seconds', { 'retry-after': '2' }, 2000],
    ['Retry-After fractional seconds', { 'retry-after': '0.5' }, 500],
    ['Retry-After as an HTTP date', { 'retry-after': new Date(Date.UTC(2030, 0, 1, 12, 0, 4)).toUTCString() }, 4000],
    ['Retry-After as a date in the past', { 'retry-after': 'Tue, 01 Jan 2019 00:00:00 GMT' }, 0],
    ['RateLimit-Reset', { 'ratelimit-reset': '3' }, 3000],
    ['X-RateLimit-Reset as an epoch', { 'x-ratelimit-reset': String(Date.UTC(2030, 0, 1, 12, 0, 6) / 1000) }, 6000],
  ])('%s sets the wait exactly', async (_, headers, wait) => {
    const { events, elapsed, requests } = await run({}, [{ status: 429, headers }, 200]);
    expect(retries(events)[0]?.delayMs).toBe(wait);
    expect(elapsed).toBe(wait);
    expect(requests).toHaveLength(2);
  });

  it('an unreadable Retry-After falls back to the backoff', async () => {
    const { events } = await run({ baseDelay: 100 }, [{ status: 503, headers: { 'retry-after': 'soon' } }, 200]);
    expect(retries(events)[0]?.delayMs).toBe(100);
  });

  it('the retry is not sent a moment before the wait is over', async () => {
    const script = scripted({ status: 429, headers: { 'retry-after': '1' } }, 200);
    const { call } = harness([retry()], script.send);
    const pending = call();
    await vi.advanceTimersByTimeAsync(999);
    expect(script.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(script.requests).toHaveLength(2);
    expect((await pending).status).toBe(200);
  });

  it('a wait beyond the cap is not waited: the response comes back at once, and says why', async () => {
    const { response, requests, elapsed, events, responses } = await run({}, [
      { status: 429, headers: { 'retry-after': '61' } },
      200,
    ]);
    expect(response?.status).toBe(429);
    expect(requests).toHaveLength(1);
    expect(elapsed).toBe(0);
    expect(skipped(events)[0]?.reason).toBe('Retry-After 61000 ms is over the 60000 ms cap');
    // Not discarded: the errors middleware reads it to build the RateLimitError.
    expect(responses[0]?.dumped()).toBe(0);
    expect(
      (await run({ maxRetryAfter: 120_000 }, [{ status: 429, headers: { 'retry-after': '61' } }, 200])).requests,
    ).toHaveLength(2);
  });

  it('a wait too long for setTimeout is clamped, not fired at once', async () => {
    const script = scripted({ status: 503, headers: { 'retry-after': String(3e6) } }, 200);
    const { call } = harness([retry({ maxRetryAfter: Number.POSITIVE_INFINITY })], script.send);
    void call().catch(() => {});
    await vi.advanceTimersByTimeAsync(60_000);
    expect(script.requests).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(1);
  });
});

describe('deadline and timeouts', () => {
  it('gives each attempt a fresh limit on the request; the transport enforces it', async () => {
    const { requests } = await run({ timeout: 250, limit: 2 }, [503]);
    expect(requests.map((request) => request.timeout)).toMatchObject([
      { ms: 250, kind: 'attempt', limit: 250 },
      { ms: 250, kind: 'attempt', limit: 250 },
      { ms: 250, kind: 'attempt', limit: 250 },
    ]);
  });

  it('near the deadline the limit is what is left of it, and says so', async () => {
    const { requests } = await run({ timeout: 1000, deadline: 1500, baseDelay: 600, limit: 1 }, [503]);
    expect(requests[0]?.timeout).toMatchObject({ ms: 1000, kind: 'attempt', limit: 1000 });
    expect(requests[1]?.timeout).toMatchObject({ ms: 900, kind: 'total', limit: 1500 });
  });

  it('per-call timeout and deadline override the middleware options', async () => {
    const { requests } = await run({ timeout: 1000 }, [200], { options: { timeout: 50, deadline: 40 } });
    expect(requests[0]?.timeout).toMatchObject({ ms: 40, kind: 'total', limit: 40 });
  });

  it('stops retrying when the next wait would pass the deadline', async () => {
    const { response, requests, events, elapsed } = await run({ deadline: 1000, baseDelay: 400, limit: 5 }, [503]);
    expect(response?.status).toBe(503);
    expect(requests).toHaveLength(2);
    expect(elapsed).toBe(400);
    expect(skipped(events).at(-1)?.reason).toBe('the wait would pass the deadline');
  });

  it('an infinite timeout and deadline put no limit on the request', async () => {
    const { requests } = await run({ timeout: Number.POSITIVE_INFINITY }, [200]);
    expect(requests[0]?.timeout).toBeUndefined();
  });

  it('an attempt that would start after the deadline fails with TimeoutError total, unsent', async () => {
    const { error, requests } = await run(
      {
        deadline: 100,
        baseDelay: 50,
        // Deciding takes longer than the deadline allows.
        shouldRetry: () => new Promise((resolve) => setTimeout(() => resolve(true), 200)),
      },
      [503, 200],
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({
      kind: 'total',
      code: 'TIMEOUT_TOTAL',
      message: '[GET] https://api.test/x: deadline exceeded after 100 ms',
    });
    expect(requests).toHaveLength(1);
  });
});

describe('the caller', () => {
  it('aborting during the wait rejects at once with AbortError and sends nothing more', async () => {
    const controller = new AbortController();
    const script = scripted({ status: 503, headers: { 'retry-after': '30' } }, 200);
    const { call } = harness([retry()], script.send);
    const pending = call({ signal: controller.signal }).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(1000);
    controller.abort(new Error('stop'));
    const error = await pending;
    expect(error).toBeInstanceOf(AbortError);
    expect(((error as AbortError).cause as Error).message).toBe('stop');
    expect(script.requests).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a signal already aborted is refused before the first attempt', async () => {
    const { error, requests } = await run({}, [200], { signal: AbortSignal.abort() });
    expect(error).toBeInstanceOf(AbortError);
    expect(requests).toHaveLength(0);
  });

  it('shouldRetry has the last word, and sees the decision', async () => {
    const decisions: unknown[] = [];
    const { requests } = await run(
      {
        shouldRetry: (decision) => {
          decisions.push({ attempt: decision.attempt, delay: decision.delay, status: decision.response?.status });
          return decision.attempt < 2;
        },
      },
      [503],
    );
    expect(requests).toHaveLength(2);
    expect(decisions).toEqual([
      { attempt: 1, delay: 300, status: 503 },
      { attempt: 2, delay: 600, status: 503 },
    ]);
    const errors: unknown[] = [];
    await run(
      {
        shouldRetry: ({ error }) => {
          errors.push(error);
          return false;
        },
      },
      [network(), 200],
    );
    expect(errors[0]).toBeInstanceOf(NetworkError);
  });
});

describe('bodies', () => {
  it('a one-shot stream body is not re-sent, and the event says why', async () => {
    const script = scripted(503, 200);
    const { call, events } = harness(
      [
        retry(),
        async (request, next) => {
          // What a transport does when it sends a stream.
          request.state.bodySent = true;
          return next(request);
        },
      ],
      script.send,
    );
    const response = await call({ method: 'PUT', body: Readable.from(['x']) });
    expect(response.status).toBe(503);
    expect(script.requests).toHaveLength(1);
    expect(skipped(events)[0]?.reason).toBe('body is a one-shot stream and cannot be re-sent');
  });

  it('a replayable body is re-sent as it is', async () => {
    const body = new URLSearchParams({ a: '1' });
    const { requests } = await run({}, [503, 200], { method: 'PUT', body });
    expect(requests.map((request) => request.body)).toEqual([body, body]);
  });
});

describe('options', () => {
  it.each([
    [{ limit: -1 }, /retry.limit must be a non-negative integer, got -1/],
    [{ limit: 1.5 }, /retry.limit must be a non-negative integer/],
    [{ baseDelay: Number.NaN }, /retry.baseDelay must be >= 0/],
    [{ maxDelay: -1 }, /retry.maxDelay must be >= 0/],
    [{ maxRetryAfter: -1 }, /retry.maxRetryAfter must be >= 0/],
    [{ timeout: 0 }, /timeout must be a positive number of milliseconds/],
    [{ deadline: -5 }, /deadline must be a positive number of milliseconds/],
  ])('%j is a ConfigError when the factory runs', (options, message) => {
    expect(() => retry(options)).toThrow(ConfigError);
    expect(() => retry(options)).toThrow(message);
  });
});

describe('retryAfterMs', () => {
  const response = (headers: Record<string, string>) =>
    respond(new HttpRequest({ url: 'https://x.test/' }), 429, '', headers);
  it('reads seconds, dates, RateLimit-Reset, and epoch resets; nothing when absent or unreadable', () => {
    const now = Date.UTC(2030, 0, 1);
    expect(retryAfterMs(response({ 'retry-after': ' 5 ' }), now)).toBe(5000);
    expect(retryAfterMs(response({ 'retry-after': new Date(now + 7000).toUTCString() }), now)).toBe(7000);
    expect(retryAfterMs(response({ 'ratelimit-reset': '9' }), now)).toBe(9000);
    expect(retryAfterMs(response({ 'x-ratelimit-reset': String(now / 1000 + 11) }), now)).toBe(11_000);
    expect(retryAfterMs(response({ 'x-ratelimit-reset': String(now / 1000 - 11) }), now)).toBe(0);
    expect(retryAfterMs(response({}), now)).toBeUndefined();
    expect(retryAfterMs(response({ 'retry-after': 'later' }), now)).toBeUndefined();
    // Retry-After wins over the rate-limit headers.
    expect(retryAfterMs(response({ 'retry-after': '1', 'ratelimit-reset': '9' }), now)).toBe(1000);
  });
});
