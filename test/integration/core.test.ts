/** The request path against a real node:http server: sockets, timeouts, retries, on both transports. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AbortError,
  createClient,
  NetworkError,
  ParseError,
  RateLimitError,
  REDACTED,
  ServiceUnavailableError,
  type SluiceClient,
  type SluiceEvent,
  TimeoutError,
} from '../../src/index.js';
import { memoryLogger } from '../helpers/logger.js';
import { answerAfter, closedPort, json, serverPool } from '../helpers/server.js';
import { counter, rejection, until } from '../helpers/wait.js';

const servers = serverPool();
const clients: SluiceClient[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await servers.closeAll();
});

/** A client that is closed after the test, collecting its events. */
function client(options: Parameters<typeof createClient>[0]) {
  const events: SluiceEvent[] = [];
  const api = createClient({ onEvent: (event) => events.push(event), ...options });
  clients.push(api);
  return { api, events };
}
const ofType = <T extends SluiceEvent['type']>(events: SluiceEvent[], type: T) =>
  events.filter((event): event is Extract<SluiceEvent, { type: T }> => event.type === type);

describe.each(['undici', 'fetch'] as const)('over the %s transport', (transport) => {
  it('a reset connection is a NetworkError ECONNRESET, and a GET is retried past it', async () => {
    const s = await servers.start((_, response, index) => {
      if (index === 0) response.socket?.destroy();
      else json(response, 200, { ok: true });
    });
    const { api, events } = client({ baseURL: s.url, transport, retry: { random: () => 0 } });
    await expect(api.get('x')).resolves.toEqual({ ok: true });
    expect(s.requests).toBe(2);
    expect(ofType(events, 'retry')).toEqual([expect.objectContaining({ attempt: 1, reason: 'ECONNRESET' })]);

    const resetting = await servers.start((_, response) => {
      response.socket?.destroy();
    });
    const direct = client({ baseURL: resetting.url, transport }).api;
    const error = await rejection(direct.get('z?api_key=k-secret', { retry: false }));
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({
      code: 'ECONNRESET',
      retryable: true,
      attempts: 1,
      method: 'GET',
      url: `${resetting.url}/z?api_key=${REDACTED}`,
    });
    expect((error as Error).message).toBe(`[GET] ${resetting.url}/z?api_key=${REDACTED}: network error ECONNRESET`);
  });

  it('a POST whose connection is reset is not retried', async () => {
    const s = await servers.start((_, response) => {
      response.socket?.destroy();
    });
    const { api } = client({ baseURL: s.url, transport, retry: { random: () => 0 } });
    await expect(api.post('orders', { n: 1 })).rejects.toMatchObject({ name: 'NetworkError', attempts: 1 });
    expect(s.requests).toBe(1);
  });

  it('a slow answer trips the attempt timeout, and the retry (with a fresh timer) succeeds', async () => {
    const s = await servers.start((_, response, index) => {
      // The first answer never comes in time; the second comes after 30 ms, inside its own 80 ms.
      answerAfter(response, index === 0 ? 5000 : 30, () => json(response, 200, { index }));
    });
    const { api, events } = client({ baseURL: s.url, transport, timeout: 80, retry: { random: () => 0 } });
    const started = performance.now();
    await expect(api.get('x')).resolves.toEqual({ index: 1 });
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(100);
    expect(elapsed).toBeLessThan(1000);
    const attempts = ofType(events, 'attempt');
    expect(attempts).toHaveLength(2);
    expect(attempts[0]?.error).toBeInstanceOf(TimeoutError);
    expect(attempts[0]?.error).toMatchObject({ kind: 'attempt', code: 'TIMEOUT_ATTEMPT', retryable: true });
    expect(attempts[1]).toMatchObject({ attempt: 2, status: 200 });
    expect(ofType(events, 'retry')[0]).toMatchObject({ reason: 'TIMEOUT_ATTEMPT' });
  });

  it('an attempt timeout on every attempt ends in TimeoutError kind attempt, with the attempt count', async () => {
    const s = await servers.start((_, response) => {
      answerAfter(response, 5000, () => json(response, 200, {}));
    });
    const { api } = client({ baseURL: s.url, transport, timeout: 40, retry: { limit: 1, random: () => 0 } });
    const error = await rejection(api.get('x'));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ kind: 'attempt', attempts: 2, method: 'GET', url: `${s.url}/x` });
    expect((error as Error).message).toBe(`[GET] ${s.url}/x: attempt timed out after 40 ms`);
    expect(s.requests).toBe(2);
  });

  it('a body that stops arriving trips the attempt timeout too', async () => {
    const s = await servers.start((_, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"partial":');
    });
    const { api } = client({ baseURL: s.url, transport, timeout: 60, retry: false });
    const started = performance.now();
    await expect(api.get('x')).rejects.toMatchObject({ name: 'TimeoutError', kind: 'attempt' });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('503, 503, 200: three attempts, and the logger gets three attempt lines', async () => {
    const s = await servers.start((_, response, index) =>
      json(response, index < 2 ? 503 : 200, { index }, { 'x-request-id': `srv-${index}` }),
    );
    const { lines, logger } = memoryLogger();
    const { api } = client({ baseURL: s.url, transport, logger, retry: { random: () => 0 } });
    await expect(api.get('items?page=2')).resolves.toEqual({ index: 2 });
    expect(s.requests).toBe(3);
    const attempts = lines.filter((line) => line.fields.sluice === 'attempt');
    expect(attempts.map((line) => [line.level, line.fields.attempt, line.fields.status])).toEqual([
      ['warn', 1, 503],
      ['warn', 2, 503],
      ['info', 3, 200],
    ]);
    const requestIds = new Set(attempts.map((line) => line.fields.requestId));
    expect(requestIds.size).toBe(1);
    expect([...requestIds][0]).toEqual(expect.any(String));
    for (const [index, line] of attempts.entries()) {
      expect(line.fields).toMatchObject({
        method: 'GET',
        url: `${s.url}/items?page=2`,
        durationMs: expect.any(Number),
        responseRequestId: `srv-${index}`,
      });
      expect(line.message).toMatch(new RegExp(`^GET ${s.url}/items\\?page=2 (503|200) \\d+ms$`));
    }
    expect(lines.filter((line) => line.fields.sluice === 'retry').map((line) => line.fields.reason)).toEqual([
      'status 503',
      'status 503',
    ]);
  });

  it('exhausted retries end in the typed error, with attempts, body and request id', async () => {
    const s = await servers.start((_, response) =>
      json(response, 503, { error: 'busy' }, { 'x-request-id': 'req-42' }),
    );
    const { api } = client({ baseURL: s.url, transport, retry: { limit: 2, random: () => 0 } });
    const error = (await rejection(api.get('x'))) as ServiceUnavailableError;
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ attempts: 3, status: 503, requestId: 'req-42', code: 'HTTP_503', retryable: true });
    expect(error.body).toEqual({ error: 'busy' });
    expect(error.message).toBe(`[GET] ${s.url}/x: 503 Service Unavailable`);
    expect(s.requests).toBe(3);
  });

  it('a POST that gets a 503 is not retried; a POST with an Idempotency-Key is', async () => {
    const s = await servers.start((request, response) => {
      const key = request.headers['idempotency-key'];
      const tries = s.seen.filter((entry) => entry.headers['idempotency-key'] === key).length;
      json(response, tries < 2 ? 503 : 201, { tries });
    });
    const { api } = client({ baseURL: s.url, transport, retry: { random: () => 0 } });
    const error = await rejection(api.post('orders', { n: 1 }));
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ attempts: 1, method: 'POST' });
    expect(s.requests).toBe(1);

    await expect(api.post('orders', { n: 2 }, { headers: { 'Idempotency-Key': 'k-1' } })).resolves.toEqual({
      tries: 2,
    });
    const keyed = s.seen.filter((entry) => entry.headers['idempotency-key'] === 'k-1');
    expect(keyed).toHaveLength(2);
    // The retry re-sends the same body.
    expect(keyed.map((entry) => entry.body.toString())).toEqual(['{"n":2}', '{"n":2}']);
  });

  it('truncated JSON is a ParseError with a short, redacted snippet, and is not retried', async () => {
    const s = await servers.start((_, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(`{"access_token":"tok-secret-123","items":[${'{"id":1},'.repeat(40)}{"id":`);
    });
    const { api } = client({ baseURL: s.url, transport });
    const error = (await rejection(api.get('x'))) as ParseError;
    expect(error).toBeInstanceOf(ParseError);
    expect(error).toMatchObject({ code: 'PARSE_ERROR', retryable: false, method: 'GET', attempts: 1 });
    expect(error.snippet.length).toBeLessThanOrEqual(130);
    expect(error.snippet).toContain(`"access_token":"${REDACTED}"`);
    expect(error.snippet).toContain('"items":[{"id":1}');
    for (const text of [error.message, error.snippet, JSON.stringify(error)]) {
      expect(text).not.toContain('tok-secret-123');
      expect(text).not.toMatch(/Unexpected|position/);
    }
    expect(s.requests).toBe(1);
  });

  it('an abort during the backoff wait stops at once with AbortError', async () => {
    const s = await servers.start((_, response) => json(response, 503, {}, { 'retry-after': '5' }));
    const { api, events } = client({ baseURL: s.url, transport });
    const controller = new AbortController();
    const pending = rejection(api.get('x', { signal: controller.signal }));
    await until(() => ofType(events, 'retry').length > 0);
    expect(ofType(events, 'retry')[0]).toMatchObject({ delayMs: 5000 });
    const aborted = performance.now();
    controller.abort();
    const error = await pending;
    expect(performance.now() - aborted).toBeLessThan(200);
    expect(error).toBeInstanceOf(AbortError);
    expect(error).toMatchObject({ code: 'ABORTED', retryable: false, method: 'GET' });
    expect(s.requests).toBe(1);
  });

  it('the caller aborting an attempt in flight is an AbortError, not retried', async () => {
    const s = await servers.start((_, response) => {
      answerAfter(response, 5000, () => json(response, 200, {}));
    });
    // The default 30 s attempt timeout: on undici the native timer path, the caller's signal as it is.
    const { api } = client({ baseURL: s.url, transport });
    const controller = new AbortController();
    const pending = rejection(api.get('x', { signal: controller.signal }));
    await until(() => s.requests === 1);
    controller.abort(new Error('user cancelled'));
    const error = await pending;
    expect(error).toBeInstanceOf(AbortError);
    expect(error).toMatchObject({ attempts: 1 });
    expect(s.requests).toBe(1);
    // Already aborted: nothing goes on the wire.
    await expect(api.get('x', { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    expect(s.requests).toBe(1);
  });

  it('the total deadline is a TimeoutError of kind total', async () => {
    const s = await servers.start((_, response) => {
      answerAfter(response, 5000, () => json(response, 200, {}));
    });
    const { api } = client({ baseURL: s.url, transport, timeout: 1000, deadline: 120 });
    const started = performance.now();
    const error = await rejection(api.get('x'));
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ kind: 'total', code: 'TIMEOUT_TOTAL', retryable: false, attempts: 1 });
    expect((error as Error).message).toBe(`[GET] ${s.url}/x: deadline exceeded after 120 ms`);
    expect(elapsed).toBeGreaterThanOrEqual(110);
    expect(elapsed).toBeLessThan(800);
  });

  it('the deadline spans attempts: retries stop when the next wait would pass it', async () => {
    const s = await servers.start((_, response) => json(response, 503, {}, { 'retry-after': '1' }));
    const { api, events } = client({ baseURL: s.url, transport, deadline: 500, retry: { limit: 5 } });
    const started = performance.now();
    await expect(api.get('x')).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(performance.now() - started).toBeLessThan(400);
    expect(s.requests).toBe(1);
    expect(ofType(events, 'retry-skipped')).toEqual([
      expect.objectContaining({ reason: 'the wait would pass the deadline' }),
    ]);
  });

  it('ECONNREFUSED keeps its code', async () => {
    const port = await closedPort();
    const { api } = client({ transport, retry: false });
    const error = await rejection(api.get(`http://127.0.0.1:${port}/x`));
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED', retryable: true, attempts: 1 });
  });

  it('204, an empty JSON body and an empty body give undefined', async () => {
    const s = await servers.start((request, response) => {
      if (request.url === '/204') response.writeHead(204);
      else if (request.url === '/empty-json') response.writeHead(200, { 'content-type': 'application/json' });
      else response.writeHead(200);
      response.end();
    });
    const { api } = client({ baseURL: s.url, transport });
    await expect(api.get('204')).resolves.toBeUndefined();
    await expect(api.delete('204')).resolves.toBeUndefined();
    await expect(api.get('empty-json')).resolves.toBeUndefined();
    await expect(api.get('empty', { responseType: 'json' })).resolves.toBeUndefined();
    const raw = await api.raw('204');
    expect(raw).toMatchObject({ status: 204, ok: true, data: undefined });
  });
});

describe('Retry-After is honoured (fake clock, real sockets)', () => {
  async function retriedAfter(retryAfter: (now: number) => string) {
    // A whole second, so that an HTTP date (whole seconds) names an exact wait.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: Date.UTC(2030, 0, 1, 12, 0, 0) });
    const s = await servers.start((_, response, index) =>
      index === 0
        ? json(response, 429, {}, { 'retry-after': retryAfter(Date.now()) })
        : json(response, 200, { ok: true }),
    );
    const sent = counter();
    const { api, events } = client({ baseURL: s.url, middleware: (defaults) => [...defaults, sent] });
    const pending = api.get('x');
    await until(() => ofType(events, 'retry').length > 0);
    const [retried] = ofType(events, 'retry');
    const wait = retried?.delayMs ?? Number.NaN;
    await vi.advanceTimersByTimeAsync(wait - 1);
    expect(sent.count).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent.count).toBe(2);
    await expect(pending).resolves.toEqual({ ok: true });
    expect(s.requests).toBe(2);
    return { wait, retried };
  }

  it('Retry-After: 1 waits exactly one second before the retry', async () => {
    const { wait, retried } = await retriedAfter(() => '1');
    expect(wait).toBe(1000);
    expect(retried).toMatchObject({ reason: 'status 429', attempt: 1 });
  });

  it('Retry-After as an HTTP date waits until that date', async () => {
    const { wait } = await retriedAfter((now) => new Date(now + 3000).toUTCString());
    expect(wait).toBe(3000);
  });

  it('a Retry-After beyond the cap fails at once with RateLimitError carrying retryAfter', async () => {
    const s = await servers.start((_, response) =>
      json(response, 429, { error: 'slow down' }, { 'retry-after': '3600' }),
    );
    const { api, events } = client({ baseURL: s.url });
    const started = performance.now();
    const error = (await rejection(api.get('x'))) as RateLimitError;
    expect(performance.now() - started).toBeLessThan(300);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ retryAfter: 3_600_000, attempts: 1, status: 429, code: 'HTTP_429', retryable: true });
    expect(s.requests).toBe(1);
    expect(ofType(events, 'retry-skipped')[0]?.reason).toBe('Retry-After 3600000 ms is over the 60000 ms cap');
  });

  it('the cap is configurable: a 2 s wait over a 1 s cap also fails at once', async () => {
    const s = await servers.start((_, response) => json(response, 503, {}, { 'retry-after': '2' }));
    const { api } = client({ baseURL: s.url, retry: { maxRetryAfter: 1000 } });
    const started = performance.now();
    await expect(api.get('x')).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(performance.now() - started).toBeLessThan(300);
    expect(s.requests).toBe(1);
  });
});
