/**
 * Every call ends within its budget, against real local servers: the per-attempt `timeout` covers the
 * token wait, the connection, the headers and the whole body; `deadline` covers the call; the token
 * endpoint has its own visible settings; failures say whether the request may have been sent.
 * Times are asserted with generous slack (2x) around what the budget promises.
 */
import { getEventListeners } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuthError,
  clientCredentials,
  createClient,
  createFetch,
  type Middleware,
  NetworkError,
  refreshTokenGrant,
  type SluiceClient,
  StoreUnavailableError,
  TimeoutError,
} from '../../src/index.js';
import { redisTokenStore } from '../../stores/index.js';
import { closedPort, json, type RawServer, rawServer, serverPool } from '../helpers/server.js';
import { rejection } from '../helpers/wait.js';

const servers = serverPool();
const raws: RawServer[] = [];
const clients: SluiceClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(raws.splice(0).map((raw) => raw.close()));
  await servers.closeAll();
});

function client(options: Parameters<typeof createClient>[0]): SluiceClient {
  const api = createClient({ retry: { random: () => 0 }, ...options });
  clients.push(api);
  return api;
}

async function raw(answer: (socket: Socket, index: number) => void): Promise<RawServer> {
  const server = await rawServer(answer);
  raws.push(server);
  return server;
}

/** The rejection of `call` and how long it took, in ms. */
async function timed(call: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  const error = await rejection(call());
  return { error, ms: performance.now() - started };
}

/** An API that answers 200 to any bearer, and a token endpoint run by `token` (its requests counted). */
async function apiWithTokenEndpoint(token: Parameters<typeof servers.start>[0]) {
  const tokens = await servers.start(token);
  const api = await servers.start((_, response) => json(response, 200, { ok: true }));
  const grant = clientCredentials({ tokenURL: `${tokens.url}/token`, clientId: 'app', clientSecret: 'app-secret' });
  return { tokens, api, grant };
}

const ok = (response: import('node:http').ServerResponse) =>
  json(response, 200, { access_token: 'tok', token_type: 'Bearer', expires_in: 3600 });

describe('the token wait is part of the attempt', () => {
  it('a token endpoint that never answers: timeout 300 fails in about 300 ms x attempts, with one token request', async () => {
    const { tokens, api, grant } = await apiWithTokenEndpoint(() => {});
    const sluice = client({ baseURL: api.url, auth: { grant } });
    const { error, ms } = await timed(() => sluice.get('x', { timeout: 300 }));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ kind: 'attempt', code: 'TIMEOUT_ATTEMPT', method: 'GET' });
    expect(ms).toBeGreaterThanOrEqual(850);
    expect(ms).toBeLessThan(1800);
    // The three attempts waited on one shared token request: retries never multiply token requests.
    expect(tokens.requests).toBe(1);
  });

  it('with deadline 2000 the call ends in about 2 s, whatever the retry settings', async () => {
    const { tokens, api, grant } = await apiWithTokenEndpoint(() => {});
    const sluice = client({ baseURL: api.url, auth: { grant }, retry: { limit: 10, random: () => 0 } });
    const { error, ms } = await timed(() => sluice.get('x', { deadline: 2000 }));
    expect(error).toMatchObject({ name: 'TimeoutError', kind: 'total', code: 'TIMEOUT_TOTAL' });
    expect(ms).toBeGreaterThanOrEqual(1950);
    expect(ms).toBeLessThan(4000);
    expect(tokens.requests).toBe(1);
  });

  it('a token that comes after the deadline is kept: the refresh went on, the next call sends no token request', async () => {
    const { tokens, api, grant } = await apiWithTokenEndpoint((_, response) => {
      setTimeout(() => ok(response), 700);
    });
    const sluice = client({ baseURL: api.url, auth: { grant } });
    const { error, ms } = await timed(() => sluice.get('x', { deadline: 300 }));
    expect(error).toMatchObject({ name: 'TimeoutError', kind: 'total' });
    expect(ms).toBeLessThan(600);
    await new Promise((resolve) => setTimeout(resolve, 600));
    await expect(sluice.get('x', { deadline: 300 })).resolves.toEqual({ ok: true });
    expect(tokens.requests).toBe(1);
  });

  it('a holder slower than the waiters: 20 callers with a 1 s deadline each give up at 1 s; the refresh serves later calls', async () => {
    const { tokens, api, grant } = await apiWithTokenEndpoint((_, response) => {
      setTimeout(() => ok(response), 1800);
    });
    const sluice = client({ baseURL: api.url, auth: { grant } });
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        sluice.get('x', { deadline: 1000 }).then(
          () => ({ error: undefined, ms: performance.now() - started }),
          (error: unknown) => ({ error, ms: performance.now() - started }),
        ),
      ),
    );
    for (const result of results) {
      expect(result.error).toMatchObject({ name: 'TimeoutError', kind: 'total' });
      expect(result.ms).toBeGreaterThanOrEqual(950);
      expect(result.ms).toBeLessThan(2000);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await expect(sluice.get('x', { deadline: 300 })).resolves.toEqual({ ok: true });
    expect(tokens.requests).toBe(1);
  });

  it('an unreachable store is waited out once: StoreUnavailableError within the store timeout, not once per retry', async () => {
    const { tokens, api } = await apiWithTokenEndpoint(() => {});
    const shared = redisTokenStore(`redis://127.0.0.1:${await closedPort()}`, { timeoutMs: 300 });
    const grant = refreshTokenGrant({ tokenURL: `${tokens.url}/token`, clientId: 'app', refreshToken: 'rt_seed' });
    const sluice = client({ baseURL: api.url, auth: { grant, ...shared } });
    const { error, ms } = await timed(() => sluice.get('x'));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ method: 'GET', url: `${api.url}/x` });
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(800);
    expect(tokens.requests).toBe(0);
  });

  it('close() ends a token request in flight at once instead of waiting out auth.timeout', async () => {
    const { api, grant } = await apiWithTokenEndpoint(() => {});
    const sluice = createClient({ baseURL: api.url, auth: { grant } });
    const call = rejection(sluice.get('x', { timeout: 200, retry: 0 }));
    expect(await call).toBeInstanceOf(TimeoutError);
    const started = performance.now();
    await sluice.close();
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('auth.timeout and auth.retry bound the token endpoint: retry + 1 requests, then an AuthError naming it', async () => {
    const { tokens, api, grant } = await apiWithTokenEndpoint(() => {});
    const sluice = client({ baseURL: api.url, auth: { grant, timeout: 300, retry: 1 } });
    const { error, ms } = await timed(() => sluice.get('x'));
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ code: 'AUTH_TIMEOUT', method: 'GET', url: `${api.url}/x` });
    expect((error as Error).message).toContain(`[POST] ${tokens.url}/token`);
    expect((error as Error).message).toContain('auth.timeout');
    expect(ms).toBeGreaterThanOrEqual(550);
    expect(ms).toBeLessThan(2500);
    expect(tokens.requests).toBe(2);
  });

  it('a 502 HTML page from the token endpoint costs auth.retry + 1 token requests per call, not 9', async () => {
    const { tokens, api, grant } = await apiWithTokenEndpoint((_, response) => {
      response.writeHead(502, { 'content-type': 'text/html' });
      response.end('<html><body>Bad Gateway</body></html>');
    });
    const sluice = client({ baseURL: api.url, auth: { grant } });
    const { error, ms } = await timed(() => sluice.get('x'));
    expect(error).toMatchObject({ name: 'AuthError', code: 'AUTH_INVALID_RESPONSE', status: 502 });
    expect((error as Error).message).toContain(`[POST] ${tokens.url}/token`);
    expect((error as Error).message).toContain('502');
    expect(ms).toBeLessThan(3000);
    expect(tokens.requests).toBe(3);
    // The next attempt of another call starts one new round, no more.
    await rejection(sluice.get('y'));
    expect(tokens.requests).toBe(6);
  });

  it('an AuthError names the call, the endpoint, the status, the OAuth error and a sanitized description; its stack reaches the caller', async () => {
    const { api, tokens, grant } = await apiWithTokenEndpoint((_, response) => {
      json(response, 401, {
        error: 'invalid_client',
        error_description: 'Client authentication failed\r\nFAKE LOG LINE client_secret=app-secret',
      });
    });
    const sluice = client({ baseURL: api.url, auth: { grant } });
    async function nightlyReport() {
      await sluice.get('reports/today');
    }
    const error = (await rejection(nightlyReport())) as AuthError;
    expect(error).toMatchObject({
      name: 'AuthError',
      code: 'AUTH_INVALID_CLIENT',
      status: 401,
      oauthError: 'invalid_client',
      method: 'GET',
      url: `${api.url}/reports/today`,
    });
    expect(error.message).toContain(
      `[GET] ${api.url}/reports/today: could not get a token: [POST] ${tokens.url}/token`,
    );
    expect(error.message).toContain('401 invalid_client: Client authentication failed');
    expect(error.message).not.toMatch(/[\r\n]/);
    expect(error.message).not.toContain('app-secret');
    expect(error.oauthErrorDescription).not.toContain('app-secret');
    expect(error.callSite).toContain('nightlyReport');
    expect(error.stack).toContain('nightlyReport');
  });
});

describe.each(['undici', 'fetch'] as const)('the body is part of the attempt (%s transport)', (transport) => {
  it.each([
    ['with Content-Length', 'content-length: 5\r\n'],
    ['chunked', 'transfer-encoding: chunked\r\n'],
  ])('a body whose attempt ran out before the read began is a TimeoutError, not a hang (%s)', async (_, framing) => {
    const late = await raw((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n${framing}\r\n`);
      const timer = setTimeout(
        () => socket.end(framing.startsWith('content') ? 'hello' : '5\r\nhello\r\n0\r\n\r\n'),
        1000,
      );
      socket.on('close', () => clearTimeout(timer));
    });
    // Below the defaults: holds the response past the attempt's end before the body is read.
    const hold: Middleware = async (request, next) => {
      const response = await next(request);
      await new Promise((resolve) => setTimeout(resolve, 400));
      return response;
    };
    const sluice = client({ baseURL: late.url, transport, middleware: (defaults) => [...defaults, hold] });
    const { error, ms } = await timed(() => sluice.get('x', { timeout: 200, retry: 0 }));
    expect(error).toMatchObject({ name: 'TimeoutError', kind: 'attempt' });
    expect(ms).toBeLessThan(900);
  });

  it('a body that drips one byte a second fails at the attempt timeout (a wall clock, not an idle timer)', async () => {
    const drip = await raw((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n[');
      const timer = setInterval(() => socket.write(' '), 200);
      socket.on('close', () => clearInterval(timer));
    });
    const sluice = client({ baseURL: drip.url, transport });
    const { error, ms } = await timed(() => sluice.get('x', { timeout: 800, retry: 0 }));
    expect(error).toMatchObject({ name: 'TimeoutError', kind: 'attempt' });
    expect(ms).toBeGreaterThanOrEqual(750);
    expect(ms).toBeLessThan(1600);
  });

  it('a reset after 20 of 100 bytes is a NetworkError inside the attempt: a GET is retried, a POST is not', async () => {
    const cut = await raw((socket, index) => {
      if (index % 2 === 0) {
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n[${'1,'.repeat(9)}`,
        );
        setTimeout(() => socket.destroy(), 20);
      } else {
        socket.end(
          'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\nconnection: close\r\n\r\n{"a":1}',
        );
      }
    });
    const sluice = client({ baseURL: cut.url, transport });
    await expect(sluice.get('x')).resolves.toEqual({ a: 1 });
    expect(cut.requests).toBe(2);
    const error = await rejection(sluice.post('y', { n: 1 }));
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ sent: true, attempts: 1 });
    expect(cut.requests).toBe(3);
  });

  it('refused connections were never sent: GET and POST are both retried, and fail as ECONNREFUSED sent: false', async () => {
    const port = await closedPort();
    const sluice = client({ baseURL: `http://127.0.0.1:${port}`, transport });
    for (const call of [() => sluice.get('x'), () => sluice.post('y', { n: 1 })]) {
      const { error, ms } = await timed(call);
      expect(error).toBeInstanceOf(NetworkError);
      expect(error).toMatchObject({ code: 'ECONNREFUSED', sent: false, attempts: 3 });
      expect(ms).toBeLessThan(1000);
    }
  });

  it.each([
    { name: 'a garbage status line', reply: 'HELLO WORLD\r\n\r\n', code: 'ERR_BAD_RESPONSE' },
    {
      name: 'a bad chunk',
      reply: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n',
      code: 'ERR_BAD_RESPONSE',
    },
    {
      name: 'a bad Content-Length',
      reply: 'HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\nhello',
      code: 'ERR_BAD_RESPONSE',
    },
    {
      name: 'huge headers',
      reply: `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(100_000)}\r\n\r\n`,
      code: 'ERR_HEADERS_OVERFLOW',
    },
  ])('$name is a NetworkError $code: a GET is retried, a POST is not', async ({ reply, code }) => {
    const bad = await raw((socket) => socket.end(reply));
    const sluice = client({ baseURL: bad.url, transport });
    const { error, ms } = await timed(() => sluice.get('x'));
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ code, sent: true, retryable: true, attempts: 3 });
    expect(ms).toBeLessThan(1000);
    expect(bad.requests).toBe(3);
    await expect(sluice.post('y', { n: 1 })).rejects.toMatchObject({ name: 'NetworkError', code, attempts: 1 });
    expect(bad.requests).toBe(4);
  });
});

describe('the attempt limit above 5 s (where undici used to get an idle timer)', () => {
  it('a drip body still fails at the attempt timeout', { timeout: 15_000 }, async () => {
    const drip = await raw((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n');
      const timer = setInterval(() => socket.write('x'), 1000);
      socket.on('close', () => clearInterval(timer));
    });
    const sluice = client({ baseURL: drip.url });
    const { error, ms } = await timed(() => sluice.get('x', { timeout: 5500, retry: 0 }));
    expect(error).toMatchObject({ name: 'TimeoutError', kind: 'attempt' });
    expect(ms).toBeGreaterThanOrEqual(5400);
    expect(ms).toBeLessThan(11_000);
  });

  it('a streamed response is handed out at its headers and may take longer than the attempt', async () => {
    const slow = await raw((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nab');
      setTimeout(() => socket.end('cd'), 400);
    });
    const sluice = client({ baseURL: slow.url });
    const stream = await sluice.get<ReadableStream<Uint8Array>>('x', { timeout: 200, responseType: 'stream' });
    expect(await new Response(stream).text()).toBe('abcd');
  });
});

describe('nothing outlives its call', () => {
  const listeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

  it.each([
    'undici',
    'fetch',
  ] as const)('no listener stays on your signal: error bodies, streams read to the end, bodiless createFetch answers (%s)', async (transport) => {
    const s = await servers.start((seen, response) => {
      if (seen.url.startsWith('/missing')) {
        response.writeHead(404, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
        response.end('not here');
      } else if (seen.url.startsWith('/empty')) {
        response.writeHead(204);
        response.end();
      } else json(response, 200, { ok: true });
    });
    const controller = new AbortController();
    const { signal } = controller;
    const sluice = client({ baseURL: s.url, transport });
    for (let i = 0; i < 5; i++) await rejection(sluice.get('missing', { signal }));
    await rejection(sluice.head('missing', { signal }));
    expect(listeners(signal)).toBe(0);
    const stream = await sluice.get<ReadableStream<Uint8Array>>('data', { signal, responseType: 'stream' });
    expect(await new Response(stream).json()).toEqual({ ok: true });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(listeners(signal)).toBe(0);
    const fetch = createFetch({ transport, timeout: 5000 });
    clients.push({ close: fetch.close } as SluiceClient);
    await fetch(`${s.url}/empty`, { signal });
    await fetch(`${s.url}/data`, { method: 'HEAD', signal });
    await (await fetch(`${s.url}/data`, { signal })).text();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(listeners(signal)).toBe(0);
  });

  it('close() stops a token endpoint retry loop: nothing is sent after it', async () => {
    const { tokens, api, grant } = await apiWithTokenEndpoint((_, response) => {
      response.writeHead(503, { 'retry-after': '1' });
      response.end();
    });
    const sluice = createClient({ baseURL: api.url, transport: 'fetch', auth: { grant } });
    void rejection(sluice.get('x'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await sluice.close();
    const sent = tokens.requests;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(tokens.requests).toBe(sent);
  });
});
