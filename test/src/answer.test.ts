/**
 * The built-in layers that only look at an attempt's answer add a step to one shared answer instead of
 * a `.then` each (src/compose.ts, `after`). That is only sound while nothing of yours sits between
 * them: a middleware of yours may hand on the very promise it got and look at it too, and must see the
 * answer as it was at its own level.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  createClient,
  HttpError,
  type HttpRequest,
  HttpResponse,
  type Middleware,
  type Transport,
} from '../../src/index.js';
import { bytesSource } from '../../src/internals.js';
import type { BodySource } from '../../src/response.js';

const BASE = 'http://api.test';

function answering(status: number): Transport {
  return {
    send: async (request: HttpRequest) =>
      new HttpResponse({
        status,
        headers: { 'content-type': 'application/json' },
        url: request.url,
        body: bytesSource('{"ok":true}'),
        request,
      }),
    close: async () => {},
  };
}

/** A middleware of yours that looks at the promise below and hands on that same promise. */
function tap(seen: unknown[]): Middleware {
  return (request, next) => {
    const sent = next(request);
    sent.then(
      (response) => seen.push(response),
      (error: unknown) => seen.push(error),
    );
    return sent;
  };
}

describe('one answer for the built-in layers', () => {
  it('a middleware of yours between built-in layers sees the answer of the layers below it, not of those above', async () => {
    const seen: unknown[] = [];
    const api = createClient({
      baseURL: BASE,
      transport: answering(404),
      // errors, retry, then yours, then redirects: errors must not turn the 404 into an HttpError for yours.
      middleware: (defaults) => [...defaults.slice(0, 2), tap(seen), ...defaults.slice(2)],
    });
    await expect(api.get('items')).rejects.toBeInstanceOf(HttpError);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(HttpResponse);
    expect((seen[0] as HttpResponse).status).toBe(404);
  });

  it('yours on top of the built-in layers sees what they made of the answer', async () => {
    const seen: unknown[] = [];
    const api = createClient({
      baseURL: BASE,
      transport: answering(404),
      middleware: (defaults) => [tap(seen), ...defaults],
    });
    await expect(api.get('items')).rejects.toBeInstanceOf(HttpError);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(HttpError);
  });

  it('the client does not add its own step to an answer yours handed on', async () => {
    const seen: unknown[] = [];
    const api = createClient({
      baseURL: BASE,
      transport: answering(200),
      middleware: (defaults) => [tap(seen), ...defaults],
    });
    expect(await api.get('items')).toEqual({ ok: true });
    expect(seen).toHaveLength(1);
    // The chain's response, not the view the client makes of it for ofetch.
    expect(seen[0]).toBeInstanceOf(HttpResponse);
  });

  it('built-in layers alone still see every answer in order: a redirect, then an error status', async () => {
    const statuses = [302, 503, 200];
    const urls: string[] = [];
    const api = createClient({
      baseURL: BASE,
      retry: { limit: 1, baseDelay: 0 },
      transport: {
        send: async (request) => {
          urls.push(request.url);
          const status = statuses.shift() ?? 500;
          return new HttpResponse({
            status,
            headers: status === 302 ? { location: `${BASE}/moved` } : { 'content-type': 'application/json' },
            url: request.url,
            body: bytesSource(status === 200 ? '{"n":1}' : '{}'),
            request,
          });
        },
        close: async () => {},
      },
    });
    expect(await api.get('items')).toEqual({ n: 1 });
    // The 503 after the redirect is retried from the start: the redirect is followed again.
    expect(urls).toEqual([`${BASE}/items`, `${BASE}/moved`, `${BASE}/items`]);
  });

  it('a middleware of yours below them that forgets to return fails the call at once, as it did', async () => {
    const api = createClient({
      baseURL: BASE,
      transport: answering(200),
      retry: false,
      middleware: (defaults) => [
        ...defaults,
        ((request: HttpRequest, next: (request: HttpRequest) => Promise<HttpResponse>) => {
          void next(request);
        }) as unknown as Middleware,
      ],
    });
    const settled = await Promise.race([
      api.get('items').then(
        () => 'resolved',
        () => 'rejected',
      ),
      new Promise((resolve) => setTimeout(() => resolve('still pending'), 1_000)),
    ]);
    expect(settled).toBe('rejected');
  });

  it("the attempt's body read calls a subclass's own buffer()", async () => {
    let buffered = 0;
    class Counted extends HttpResponse {
      override async buffer(maxBytes?: number): Promise<void> {
        buffered++;
        await super.buffer(maxBytes);
      }
    }
    const api = createClient({
      baseURL: BASE,
      transport: {
        send: async (request: HttpRequest) =>
          new Counted({
            status: 200,
            headers: { 'content-type': 'application/json' },
            url: request.url,
            // A Node stream, as undici's body is: the body read's own fast path would take it.
            body: Readable.from([Buffer.from('{"n":2}')]) as unknown as BodySource,
            request,
          }),
        close: async () => {},
      },
    });
    expect(await api.get('items')).toEqual({ n: 2 });
    expect(buffered).toBe(1);
  });
});
