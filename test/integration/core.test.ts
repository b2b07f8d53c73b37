/** The request path against a real node:http server: sockets, timeouts, retries. */
import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortError,
  createClient,
  NetworkError,
  ParseError,
  RateLimitError,
  ServiceUnavailableError,
  type SluiceEvent,
  TimeoutError,
} from '../../src/index.js';
import { json, startServer } from '../helpers/server.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});
async function server(handler: Parameters<typeof startServer>[0]) {
  const started = await startServer(handler);
  closers.push(started.close);
  return started;
}
function collect() {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  const at = (level: string) => (fields: object, message?: string) =>
    lines.push({ level, fields: fields as Record<string, unknown>, message: message ?? '' });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

describe('retries against a real server', () => {
  it('a reset connection is a NetworkError ECONNRESET, and a GET is retried past it', async () => {
    const s = await server((_, response, index) => {
      if (index === 0) response.socket?.destroy();
      else json(response, 200, { ok: true });
    });
    const api = createClient({ baseURL: s.url, retry: { baseDelay: 1 } });
    closers.push(() => api.close());
    await expect(api.get('x')).resolves.toEqual({ ok: true });
    expect(s.seen).toHaveLength(2);
    const resetting = await server((_, response) => {
      response.socket?.destroy();
    });
    const error = await api.get(`${resetting.url}/z`, { retry: false }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as NetworkError).code).toBe('ECONNRESET');
    expect((error as NetworkError).retryable).toBe(true);
    expect((error as NetworkError).attempts).toBe(1);
  });

  it('a slow answer trips the attempt timeout, and the retry succeeds', async () => {
    const s = await server((_, response, index) => {
      if (index === 0) setTimeout(() => json(response, 200, { late: true }), 1000);
      else json(response, 200, { fast: true });
    });
    const events: SluiceEvent[] = [];
    const api = createClient({
      baseURL: s.url,
      timeout: 100,
      retry: { baseDelay: 1 },
      onEvent: (event) => events.push(event),
    });
    closers.push(() => api.close());
    const started = Date.now();
    await expect(api.get('x')).resolves.toEqual({ fast: true });
    expect(Date.now() - started).toBeLessThan(900);
    const attempts = events.filter((event) => event.type === 'attempt');
    expect(attempts).toHaveLength(2);
    expect(attempts[0]).toMatchObject({ attempt: 1, error: expect.any(TimeoutError) });
    expect(((attempts[0] as { error?: unknown }).error as TimeoutError).kind).toBe('attempt');
    expect(attempts[1]).toMatchObject({ attempt: 2, status: 200 });
  });

  it('503, 503, 200: three attempts, each logged', async () => {
    const s = await server((_, response, index) => json(response, index < 2 ? 503 : 200, { index }));
    const { lines, logger } = collect();
    const api = createClient({ baseURL: s.url, logger, retry: { baseDelay: 1 } });
    closers.push(() => api.close());
    await expect(api.get('x')).resolves.toEqual({ index: 2 });
    const attempts = lines.filter((line) => line.fields.sluice === 'attempt');
    expect(attempts.map((line) => line.fields.status)).toEqual([503, 503, 200]);
    expect(attempts.map((line) => line.fields.attempt)).toEqual([1, 2, 3]);
    expect(attempts.map((line) => line.level)).toEqual(['warn', 'warn', 'info']);
    for (const line of attempts) {
      expect(line.fields).toMatchObject({
        method: 'GET',
        url: `${s.url}/x`,
        requestId: expect.any(String),
        durationMs: expect.any(Number),
      });
    }
    expect(lines.filter((line) => line.fields.sluice === 'retry')).toHaveLength(2);
  });

  it('exhausted retries end in the typed error with the attempt count', async () => {
    const s = await server((_, response) => json(response, 503, { error: 'busy' }, { 'x-request-id': 'req-42' }));
    const api = createClient({ baseURL: s.url, retry: { limit: 2, baseDelay: 1 } });
    closers.push(() => api.close());
    const error = (await api.get('x').catch((caught: unknown) => caught)) as ServiceUnavailableError;
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error.attempts).toBe(3);
    expect(error.status).toBe(503);
    expect(error.requestId).toBe('req-42');
    expect(error.body).toEqual({ error: 'busy' });
    expect(error.message).toBe(`[GET] ${s.url}/x: 503 Service Unavailable`);
  });

  it('429 with Retry-After: 1 waits a second before the retry', async () => {
    const s = await server((_, response, index) =>
      index === 0 ? json(response, 429, {}, { 'retry-after': '1' }) : json(response, 200, { ok: true }),
    );
    const api = createClient({ baseURL: s.url });
    closers.push(() => api.close());
    await api.get('x');
    const gap = s.seen[1]!.at - s.seen[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(1600);
  });

  it('429 with Retry-After as an HTTP date waits until then', async () => {
    const s = await server((_, response, index) =>
      index === 0
        ? json(response, 429, {}, { 'retry-after': new Date(Date.now() + 2000).toUTCString() })
        : json(response, 200, { ok: true }),
    );
    const api = createClient({ baseURL: s.url });
    closers.push(() => api.close());
    await api.get('x');
    const gap = s.seen[1]!.at - s.seen[0]!.at;
    // HTTP dates have whole seconds: the wait is between 1 and 2 seconds.
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(2600);
  });

  it('a Retry-After beyond the cap fails at once with RateLimitError', async () => {
    const s = await server((_, response) => json(response, 429, {}, { 'retry-after': '3600' }));
    const api = createClient({ baseURL: s.url });
    closers.push(() => api.close());
    const started = Date.now();
    const error = (await api.get('x').catch((caught: unknown) => caught)) as RateLimitError;
    expect(Date.now() - started).toBeLessThan(500);
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error.retryAfter).toBe(3_600_000);
    expect(error.attempts).toBe(1);
    expect(s.seen).toHaveLength(1);
  });

  it('a POST that gets a 503 is not retried; with an Idempotency-Key it is', async () => {
    const s = await server((request, response) => {
      const tries = s.seen.filter(
        (entry) => entry.headers['idempotency-key'] === request.headers['idempotency-key'],
      ).length;
      json(response, tries < 2 ? 503 : 201, { tries });
    });
    const api = createClient({ baseURL: s.url, retry: { baseDelay: 1 } });
    closers.push(() => api.close());
    await expect(api.post('orders', { n: 1 })).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(s.seen).toHaveLength(1);
    await expect(api.post('orders', { n: 1 }, { headers: { 'idempotency-key': 'k-1' } })).resolves.toEqual({
      tries: 2,
    });
    expect(s.seen.filter((entry) => entry.headers['idempotency-key'] === 'k-1')).toHaveLength(2);
  });

  it('truncated JSON is a ParseError with a short snippet', async () => {
    const s = await server((_, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"items":[{"id":1},{"id":2');
    });
    const api = createClient({ baseURL: s.url });
    closers.push(() => api.close());
    const error = (await api.get('x').catch((caught: unknown) => caught)) as ParseError;
    expect(error).toBeInstanceOf(ParseError);
    expect(error.snippet).toBe('{"items":[{"id":1},{"id":2');
    expect(error.message).not.toContain('Unexpected');
    expect(error.method).toBe('GET');
  });

  it('an abort during the backoff wait stops at once with AbortError', async () => {
    const s = await server((_, response) => json(response, 503, {}, { 'retry-after': '5' }));
    const api = createClient({ baseURL: s.url });
    closers.push(() => api.close());
    const controller = new AbortController();
    const pending = api.get('x', { signal: controller.signal }).catch((caught: unknown) => caught);
    while (s.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const aborted = Date.now();
    controller.abort();
    const error = await pending;
    expect(Date.now() - aborted).toBeLessThan(100);
    expect(error).toBeInstanceOf(AbortError);
    expect(s.seen).toHaveLength(1);
  });

  it('the total deadline is a TimeoutError of kind total', async () => {
    const s = await server((_, response) => {
      setTimeout(() => json(response, 200, {}), 2000);
    });
    const api = createClient({ baseURL: s.url, timeout: 1000, deadline: 150 });
    closers.push(() => api.close());
    const started = Date.now();
    const error = (await api.get('x').catch((caught: unknown) => caught)) as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.kind).toBe('total');
    expect(error.code).toBe('TIMEOUT_TOTAL');
    expect(Date.now() - started).toBeLessThan(800);
  });

  it('ECONNREFUSED keeps its code; 204 and an empty body give undefined', async () => {
    const s = await server((request, response) => {
      if (request.url === '/204') {
        response.writeHead(204);
        response.end();
      } else {
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': '0' });
        response.end();
      }
    });
    const api = createClient({ baseURL: s.url });
    closers.push(() => api.close());
    await expect(api.get('204')).resolves.toBeUndefined();
    await expect(api.get('empty')).resolves.toBeUndefined();
    await expect(api.delete('204')).resolves.toBeUndefined();
    const refused = await api.get('http://127.0.0.1:1/', { retry: false }).catch((caught: unknown) => caught);
    expect(refused).toBeInstanceOf(NetworkError);
    expect((refused as NetworkError).code).toBe('ECONNREFUSED');
  });
});
