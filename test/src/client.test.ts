import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  createClient,
  createFetch,
  HttpError,
  isHttpError,
  isSluiceError,
  NotFoundError,
  SluiceError,
  staticToken,
} from '../../src/index.js';
import { json, startServer } from '../helpers/server.js';

let server: Awaited<ReturnType<typeof startServer>>;
let flaky = 0;
beforeAll(async () => {
  server = await startServer((request, response) => {
    if (request.url === '/flaky' && flaky++ % 2 === 0) json(response, 503, {});
    else if (request.url === '/missing') json(response, 404, { error: 'nope' });
    else json(response, 200, { url: request.url, method: request.method, body: request.body.toString() });
  });
});
afterAll(() => server.close());

describe('createClient options', () => {
  it('creating many clients is cheap', () => {
    const started = performance.now();
    const clients = Array.from({ length: 1000 }, () => createClient({ baseURL: server.url }));
    expect(performance.now() - started).toBeLessThan(2000);
    return Promise.all(clients.map((client) => client.close()));
  });

  it('supports await using (Symbol.asyncDispose)', async () => {
    let closed = false;
    {
      await using api = createClient({
        baseURL: server.url,
        transport: {
          send: () => Promise.reject(new Error('unused')),
          close: async () => {
            closed = true;
          },
        },
      });
      expect(api).toBeDefined();
    }
    expect(closed).toBe(true);
  });

  it('nothing thrown is a bare error: a header Node rejects becomes a SluiceError without the value', async () => {
    const api = createClient({ baseURL: server.url });
    const error = await api
      .get('a', { headers: { 'x-bad': 'secret-value\r\nInjected: 1' } })
      .catch((caught: unknown) => caught);
    expect(isSluiceError(error)).toBe(true);
    expect((error as Error).message).not.toContain('secret-value');
    expect(JSON.stringify(error)).not.toContain('secret-value');
    await api.close();
  });

  it('a default header Node rejects fails at construction, as a ConfigError without the value', () => {
    const made = (() => {
      try {
        return createClient({ baseURL: server.url, headers: { 'x-bad': 'secret-value\r\nInjected: 1' } });
      } catch (error) {
        return error;
      }
    })();
    expect(made).toBeInstanceOf(ConfigError);
    expect((made as Error).message).not.toContain('secret-value');
  });

  it('with auth too, an invalid default header is a ConfigError without the value', () => {
    const made = (() => {
      try {
        return createClient({
          baseURL: server.url,
          headers: { 'x-bad': 'secret-value\r\nInjected: 1' },
          auth: { grant: staticToken('t'), origins: [server.url] },
        });
      } catch (error) {
        return error;
      }
    })();
    expect(made).toBeInstanceOf(ConfigError);
    expect((made as Error).message).not.toContain('secret-value');
  });

  it('request() with options that are not an object rejects, it does not throw', async () => {
    const api = createClient({ baseURL: server.url });
    const pending = api.request('a', null as never);
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toBeDefined();
    await api.close();
  });

  it('every method with options that are not an object rejects, none throws', async () => {
    const api = createClient({ baseURL: server.url });
    const calls = [
      () => api.get('a', null as never),
      () => api.delete('a', null as never),
      () => api.head('a', null as never),
      () => api.raw('a', null as never),
      () => api.post('a', undefined, null as never),
      () => api.put('a', undefined, null as never),
      () => api.patch('a', undefined, null as never),
    ];
    for (const call of calls) {
      let pending: Promise<unknown> | undefined;
      expect(() => {
        pending = call();
      }).not.toThrow();
      await expect(pending).rejects.toBeInstanceOf(TypeError);
    }
    await api.close();
  });

  it('rejects, never throws, even when the error a call fails with cannot be marked', async () => {
    const api = createClient({ baseURL: server.url });
    const frozen = Object.freeze(new SluiceError('frozen', { code: 'ERR_FROZEN' }));
    const headers = {
      get 'x-trap'(): string {
        throw frozen;
      },
    };
    let pending: Promise<unknown> | undefined;
    expect(() => {
      pending = api.get('a', { headers });
    }).not.toThrow();
    await expect(pending).rejects.toBeDefined();
    await api.close();
  });

  it('a query that cannot be serialized rejects with its own error, before anything is sent', async () => {
    const api = createClient({ baseURL: server.url });
    const error = await api.get('a', { query: { n: 10n as never } }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TypeError);
    expect(error).not.toBeInstanceOf(SluiceError);
    await api.close();
  });

  it('a custom chain without errors() still throws typed HTTP errors', async () => {
    const api = createClient({ baseURL: server.url, middleware: [] });
    const error = await api.get('missing').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HttpError);
    expect(isHttpError(error)).toBe(true);
    expect((error as HttpError).status).toBe(404);
    await api.close();
  });

  it('middleware as a function prepends to the default chain', async () => {
    const seen: string[] = [];
    const api = createClient({
      baseURL: server.url,
      middleware: (defaults) => [
        (request, next) => {
          seen.push(request.url);
          return next(request.withHeader('x-extra', '1'));
        },
        ...defaults,
      ],
    });
    await expect(api.get('missing')).rejects.toBeInstanceOf(NotFoundError);
    expect(seen).toEqual([`${server.url}/missing`]);
    expect(server.seen.at(-1)?.headers['x-extra']).toBe('1');
    await api.close();
  });

  it('isSluiceError matches by name and shape, for errors from another copy of the package', () => {
    const foreign = Object.assign(new Error('x'), { name: 'NotFoundError', code: 'HTTP_404', retryable: false });
    expect(isSluiceError(foreign)).toBe(true);
    expect(isSluiceError(new Error('x'))).toBe(false);
    expect(isSluiceError(new DOMException('aborted', 'AbortError'))).toBe(false);
    expect(isSluiceError(new SluiceError('x'))).toBe(true);
  });
});

describe('createFetch', () => {
  it('takes input + init, returns a real Response, and error statuses come back as responses', async () => {
    const sluiceFetch = createFetch({ retry: { baseDelay: 1 } });
    const response = await sluiceFetch(`${server.url}/missing`);
    expect(response).toBeInstanceOf(Response);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: 'nope' });
    const posted = await sluiceFetch(`${server.url}/echo`, {
      method: 'POST',
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    expect(await posted.json()).toMatchObject({ method: 'POST', body: 'hello' });
    await sluiceFetch.close();
  });

  it('takes a Request, and runs the chain (a 503 is retried)', async () => {
    const sluiceFetch = createFetch({ retry: { baseDelay: 1 } });
    const before = server.seen.length;
    const response = await sluiceFetch(new Request(`${server.url}/flaky`, { method: 'PUT', body: 'b' }));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ method: 'PUT', body: 'b' });
    expect(server.seen.length - before).toBe(2);
    await sluiceFetch.close();
  });
});
