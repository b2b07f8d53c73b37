/** The two transports: undici (against real local servers only) and fetch (any implementation). */
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortError,
  BodyNotReplayableError,
  ClosedError,
  createClient,
  fetchTransport,
  HttpRequest,
  NetworkError,
  TimeoutError,
  undiciTransport,
} from '../../src/index.js';
import { attemptSignal } from '../../src/internals.js';
import { AttemptClock } from '../../src/transport.js';
import { json, serverPool, startServer, type TestServer } from '../helpers/server.js';
import { rejection } from '../helpers/wait.js';

let echo: TestServer;
beforeAll(async () => {
  echo = await startServer((request, response) =>
    json(response, 200, {
      method: request.method,
      url: request.url,
      type: request.headers['content-type'] ?? null,
      length: request.headers['content-length'] ?? null,
      body: request.body.toString(),
    }),
  );
});
afterAll(() => echo.close());
const servers = serverPool();
afterEach(() => servers.closeAll());

describe('undici transport', () => {
  it('uses a dispatcher you pass, and leaves it open on close', async () => {
    const agent = new Agent();
    let dispatched = 0;
    const counting = agent.compose((dispatch) => (options, handler) => {
      dispatched++;
      return dispatch(options, handler);
    });
    const api = createClient({ baseURL: echo.url, dispatcher: counting });
    await api.get('a');
    await api.get('b');
    await api.close();
    expect(dispatched).toBe(2);
    expect(agent.closed).toBe(false);
    // Still usable by its owner.
    const again = createClient({ baseURL: echo.url, dispatcher: agent });
    await expect(again.get('c')).resolves.toMatchObject({ url: '/c' });
    await agent.close();
  });

  it('close() closes the Agent it owns: a later call fails at once as ERR_CLIENT_CLOSED, not retried', async () => {
    const api = createClient({ baseURL: echo.url });
    await api.get('a');
    const before = echo.requests;
    await api.close();
    const error = await rejection(api.get('b'));
    expect(error).toBeInstanceOf(ClosedError);
    expect(error).not.toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ code: 'ERR_CLIENT_CLOSED', retryable: false, attempts: 0 });
    expect(echo.requests).toBe(before);
  });

  it('supports `await using`: Symbol.asyncDispose closes the client', async () => {
    let outside: ReturnType<typeof createClient> | undefined;
    {
      await using api = createClient({ baseURL: echo.url });
      await expect(api.get('inside')).resolves.toMatchObject({ url: '/inside' });
      outside = api;
    }
    await expect(outside.get('after')).rejects.toMatchObject({ code: 'ERR_CLIENT_CLOSED' });
  });

  it('keeps connections alive and pools them: sequential calls share one socket, `connections` caps them', async () => {
    let connections = 0;
    const s = await servers.start((_, response) => json(response, 200, {}));
    // Count TCP connections through a tiny TCP relay in front of the server.
    const relay = await tcpRelay(s.port, () => connections++);
    const api = createClient({ baseURL: `http://127.0.0.1:${relay.port}`, connections: 1 });
    for (let i = 0; i < 3; i++) await api.get('seq');
    expect(connections).toBe(1);
    await Promise.all([api.get('p1'), api.get('p2'), api.get('p3')]);
    expect(connections).toBe(1);
    expect(s.requests).toBe(6);
    await api.close();
    await relay.close();
  });

  it('routes through an HTTP proxy', async () => {
    const proxy = await connectProxy();
    const api = createClient({ proxy: proxy.url });
    await expect(api.get(`${echo.url}/via-proxy`)).resolves.toMatchObject({ url: '/via-proxy' });
    expect(proxy.tunnels).toEqual([`127.0.0.1:${echo.port}`]);
    await api.close();
    await proxy.close();
  });

  it('TLS: a custom CA is trusted, verification can be turned off, a client certificate is presented', async () => {
    const fixture = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url));
    const ca = fixture('ca.pem');
    const server = createHttpsServer(
      { key: fixture('server-key.pem'), cert: fixture('server.pem'), ca, requestCert: true, rejectUnauthorized: false },
      (request, response) => {
        const peer = (request.socket as import('node:tls').TLSSocket).getPeerCertificate();
        json(response, 200, { client: peer.subject?.CN ?? null });
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const untrusting = createClient({ retry: false });
      const error = await rejection(untrusting.get(url));
      expect(error).toBeInstanceOf(NetworkError);
      expect((error as NetworkError).code).toMatch(/CERT|SIGNED|ISSUER/);
      await untrusting.close();

      const trusting = createClient({ tls: { ca } });
      await expect(trusting.get(url)).resolves.toEqual({ client: null });
      await trusting.close();

      const insecure = createClient({ tls: { rejectUnauthorized: false } });
      await expect(insecure.get(url)).resolves.toEqual({ client: null });
      await insecure.close();

      const mutual = createClient({ tls: { ca, cert: fixture('client.pem'), key: fixture('client-key.pem') } });
      await expect(mutual.get(url)).resolves.toEqual({ client: 'sluice-test-client' });
      await mutual.close();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('sends every body kind, with the content type it implies', async () => {
    const transport = undiciTransport();
    const send = (body: HttpRequest['body'], headers?: Headers) =>
      transport
        .send(new HttpRequest({ method: 'POST', url: `${echo.url}/b`, body, ...(headers ? { headers } : {}) }))
        .then((response) => response.json());
    const form = new FormData();
    form.set('field', 'form-value');
    form.set('file', new Blob(['file-content'], { type: 'text/plain' }), 'f.txt');
    const sentForm = (await send(form)) as { type: string; body: string };
    expect(sentForm.type).toMatch(/^multipart\/form-data; boundary=/);
    expect(sentForm.body).toContain('form-value');
    expect(sentForm.body).toContain('filename="f.txt"');
    await expect(send(new Blob(['csv'], { type: 'text/csv' }))).resolves.toMatchObject({
      type: 'text/csv',
      body: 'csv',
    });
    await expect(send(new Blob(['x']))).resolves.toMatchObject({ type: null, body: 'x' });
    await expect(send(new URLSearchParams({ a: '1' }))).resolves.toMatchObject({
      type: 'application/x-www-form-urlencoded;charset=UTF-8',
      body: 'a=1',
    });
    // A content type the caller set wins.
    await expect(
      send(new URLSearchParams({ a: '1' }), new Headers({ 'content-type': 'text/x-mine' })),
    ).resolves.toMatchObject({ type: 'text/x-mine' });
    await expect(send(new TextEncoder().encode('u8').buffer)).resolves.toMatchObject({ body: 'u8', length: '2' });
    await expect(send(Readable.from([Buffer.from('node-'), Buffer.from('stream')]))).resolves.toMatchObject({
      body: 'node-stream',
    });
    await expect(send(new Blob(['web-stream']).stream())).resolves.toMatchObject({ body: 'web-stream' });
    async function* chunks() {
      yield new TextEncoder().encode('async-');
      yield new TextEncoder().encode('iterable');
    }
    await expect(send(chunks())).resolves.toMatchObject({ body: 'async-iterable' });
    await expect(send(() => 'from-factory')).resolves.toMatchObject({ body: 'from-factory' });
    await transport.close();
  });

  it('a one-shot stream body goes on the wire once; a body factory any number of times', async () => {
    const transport = undiciTransport();
    const stream = new HttpRequest({ method: 'PUT', url: `${echo.url}/s`, body: Readable.from(['once']) });
    await (await transport.send(stream)).discard();
    const again = await rejection(transport.send(stream.with({})));
    expect(again).toBeInstanceOf(BodyNotReplayableError);
    expect((again as Error).message).toMatch(/pass a body factory or set bufferBody/);
    const factory = new HttpRequest({ method: 'PUT', url: `${echo.url}/f`, body: () => Readable.from(['again']) });
    for (let i = 0; i < 2; i++)
      await expect((await transport.send(factory)).json()).resolves.toMatchObject({ body: 'again' });
    await transport.close();
  });

  it('a body it cannot send is a SluiceError', async () => {
    const transport = undiciTransport();
    const request = new HttpRequest({ method: 'POST', url: `${echo.url}/x`, body: 42 as unknown as string });
    await expect(transport.send(request)).rejects.toMatchObject({ code: 'ERR_BODY_TYPE' });
    await transport.close();
  });

  it("a dispatcher of yours that answers and then throws, or answers only with a promise: each attempt's answer goes up once", async () => {
    const data = (opaque: unknown) => ({
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      trailers: {},
      opaque,
      context: {},
      body: Readable.from([Buffer.from('{"ok":1}')]),
    });
    const both = {
      request(options: { opaque: unknown }, callback: (error: Error | null, data: unknown) => void) {
        callback(null, data(options.opaque));
        throw new Error('and then this');
      },
      close: async () => {},
    };
    const promiseOnly = {
      request: (options: { opaque: unknown }) => Promise.resolve(data(options.opaque)),
      close: async () => {},
    };
    for (const dispatcher of [both, promiseOnly]) {
      const attempts: number[] = [];
      const api = createClient({
        baseURL: 'http://x.test',
        dispatcher: dispatcher as unknown as Dispatcher,
        onEvent: (event) => {
          if (event.type === 'attempt') attempts.push(event.status ?? 0);
        },
      });
      expect(await api.get('a')).toEqual({ ok: 1 });
      expect(attempts).toEqual([200]);
    }
  });

  it('splits each URL into the origin and path it names, whatever origin came before it', async () => {
    const seen: [string, string][] = [];
    const recording = {
      request(options: { origin: string; path: string }, callback: (error: Error | null) => void) {
        seen.push([options.origin, options.path]);
        callback(new Error('recorded'));
      },
      close: async () => {},
    };
    const transport = undiciTransport({ dispatcher: recording as unknown as Dispatcher });
    const urls: [string, string, string][] = [
      ['http://a.test/x', 'http://a.test', '/x'],
      ['http://a.test/y?q=1', 'http://a.test', '/y?q=1'],
      ['http://a.test:8443/x', 'http://a.test:8443', '/x'],
      ['http://a.test/x', 'http://a.test', '/x'],
      ['http://a.test.evil/x', 'http://a.test.evil', '/x'],
      ['http://a.test/x', 'http://a.test', '/x'],
      ['http://user@a.test/x', 'http://a.test', '/x'],
      ['http://a.test/x', 'http://a.test', '/x'],
      ['http://a.test?q=/p', 'http://a.test', '/?q=/p'],
      ['http://a.test/x#frag', 'http://a.test', '/x'],
      ['HTTP://A.TEST/x', 'HTTP://A.TEST', '/x'],
    ];
    for (const [url] of urls) await rejection(transport.send(new HttpRequest({ url })));
    expect(seen).toEqual(urls.map(([, origin, path]) => [origin, path]));
  });

  it('gives every attempt one wall-clock timer (not undici idle timers); a streamed body gets the idle timer', async () => {
    const seen: (Dispatcher.DispatchOptions & { signal?: unknown })[] = [];
    const agent = new Agent();
    const spy = agent.compose((dispatch) => (options, handler) => {
      seen.push(options);
      return dispatch(options, handler);
    });
    const transport = undiciTransport({ dispatcher: spy });
    const url = `${echo.url}/t`;
    const plan = { ms: 30_000, kind: 'attempt', limit: 30_000 } as const;
    await (await transport.send(new HttpRequest({ url, timeout: plan }))).discard();
    await (await transport.send(new HttpRequest({ url, timeout: plan, options: { streamBody: true } }))).discard();
    expect(seen[0]?.signal).toBeInstanceOf(AttemptClock);
    expect(seen[0]?.bodyTimeout).toBeUndefined();
    expect(seen[1]?.bodyTimeout).toBe(30_000);
    await transport.close();
    await agent.close();
  });
});

describe('fetch transport', () => {
  it('uses the fetch you give it, with redirect: manual, and the implied content type', async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    const transport = fetchTransport({
      fetch: async (url, init = {}) => {
        calls.push({ url: String(url), init });
        return new Response('{"ok":true}', { status: 201, headers: { 'content-type': 'application/json' } });
      },
    });
    const response = await transport.send(
      new HttpRequest({ method: 'POST', url: 'https://x.test/a', body: new URLSearchParams({ q: '1' }) }),
    );
    expect(response.status).toBe(201);
    expect(response.statusText).toBe('');
    await expect(response.json()).resolves.toEqual({ ok: true });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.init.redirect).toBe('manual');
    expect(new Headers(calls[0]?.init.headers).get('content-type')).toBe(
      'application/x-www-form-urlencoded;charset=UTF-8',
    );
    expect(calls[0]?.init.body).toBe('q=1');
    await transport.close();
  });

  it('sends a Node stream as a web stream (duplex half), and a bodiless response reads as empty', async () => {
    let init: (RequestInit & { duplex?: string }) | undefined;
    const transport = fetchTransport({
      fetch: async (_, given) => {
        init = given;
        return new Response(null, { status: 204 });
      },
    });
    const response = await transport.send(
      new HttpRequest({ method: 'PUT', url: 'https://x.test/a', body: Readable.from(['x']) }),
    );
    expect(init?.body).toBeInstanceOf(ReadableStream);
    expect(init?.duplex).toBe('half');
    expect(response.status).toBe(204);
    await expect(response.text()).resolves.toBe('');
  });

  it('a time limit aborts the fetch with the TimeoutError of its plan', async () => {
    const transport = fetchTransport({
      fetch: (_, init) =>
        new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal?.reason))),
    });
    const error = await rejection(
      transport.send(new HttpRequest({ url: 'https://x.test/a', timeout: { ms: 10, kind: 'total', limit: 500 } })),
    );
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ kind: 'total', message: '[GET] https://x.test/a: deadline exceeded after 500 ms' });
  });

  it("Node's own fetch gets every header field the chain set, the implied content type, and a caller's own", async () => {
    const seen: Record<string, string | string[] | undefined>[] = [];
    const server = await servers.start((request, response) => {
      seen.push(request.headers);
      json(response, 200, { type: request.headers['content-type'] ?? null });
    });
    const transport = fetchTransport();
    const base = new HttpRequest({ method: 'POST', url: `${server.url}/h`, body: new URLSearchParams({ a: '1' }) });
    const listed = base.withHeader('x-one', '1').withHeader('authorization', 'Bearer t');
    await expect((await transport.send(listed)).json()).resolves.toEqual({
      type: 'application/x-www-form-urlencoded;charset=UTF-8',
    });
    expect(seen[0]).toMatchObject({ 'x-one': '1', authorization: 'Bearer t' });
    const typed = base.withHeader('x-two', '2').withHeader('content-type', 'text/x-mine');
    await expect((await transport.send(typed)).json()).resolves.toEqual({ type: 'text/x-mine' });
    expect(seen[1]).toMatchObject({ 'x-two': '2' });
    // Given as a Headers: sent as it is.
    const given = new HttpRequest({ url: `${server.url}/h`, headers: new Headers({ 'x-three': '3' }) });
    await (await transport.send(given)).json();
    expect(seen[2]).toMatchObject({ 'x-three': '3' });
  });

  it('rejects a fetch that is not a function', () => {
    expect(() => fetchTransport({ fetch: 'nope' as never })).toThrow(/fetch must be a function/);
  });
});

describe('AttemptClock', () => {
  const started = (ms: number, url = 'http://x.test/') => {
    const clock = AttemptClock.start(new HttpRequest({ url }), { ms, kind: 'attempt', limit: ms });
    const fired = new Promise<number>((resolve) => clock.on('abort', () => resolve(performance.now())));
    return { clock, fired, at: performance.now() };
  };
  /** `started` fired `ms` after it began (within a loaded machine's slack), with a TimeoutError. */
  const firedAtItsEnd = ({ clock, at }: ReturnType<typeof started>, when: number, ms: number) => {
    expect(when - at).toBeGreaterThanOrEqual(ms - 1);
    expect(when - at).toBeLessThan(ms + 140);
    expect(clock.reason).toBeInstanceOf(TimeoutError);
  };

  it('clocks of one duration each fire at their own end; a stopped one never fires', async () => {
    const first = started(60);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = started(60);
    const stopped = started(60);
    stopped.clock.stop();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const third = started(60);
    const [a, b, c] = await Promise.all([first.fired, second.fired, third.fired]);
    firedAtItsEnd(first, a, 60);
    firedAtItsEnd(second, b, 60);
    firedAtItsEnd(third, c, 60);
    expect(a).toBeLessThan(b);
    expect(b).toBeLessThan(c);
    expect(stopped.clock.aborted).toBe(false);
  });

  it('the first clock stopped, the next still fires at its own end; clocks of other durations keep theirs', async () => {
    const early = started(40);
    await new Promise((resolve) => setTimeout(resolve, 15));
    const later = started(40);
    const short = started(10);
    early.clock.stop();
    const [shortAt, laterAt] = await Promise.all([short.fired, later.fired]);
    expect(shortAt - short.at).toBeGreaterThanOrEqual(9);
    expect(laterAt - later.at).toBeGreaterThanOrEqual(39);
    expect(shortAt).toBeLessThan(laterAt);
    expect(early.clock.aborted).toBe(false);
  });

  it('a clock started as another fires gets its own full time', async () => {
    const first = started(30);
    const chained = new Promise<{ at: number; fired: number }>((resolve) => {
      first.clock.on('abort', () => {
        const next = started(30);
        void next.fired.then((fired) => resolve({ at: next.at, fired }));
      });
    });
    const { at, fired } = await chained;
    expect(fired - at).toBeGreaterThanOrEqual(29);
  });

  it('leaves no timer behind: a script whose clocks all stopped exits at once', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = [
      "import { AttemptClock } from './src/transport.ts';",
      "import { HttpRequest } from './src/request.ts';",
      "const plan = { ms: 60000, kind: 'attempt', limit: 60000 };",
      "const clocks = [1, 2, 3].map(() => AttemptClock.start(new HttpRequest({ url: 'http://x.test/' }), plan));",
      'for (const clock of clocks) clock.stop();',
      "const kept = AttemptClock.start(new HttpRequest({ url: 'http://x.test/' }), plan);",
      'void kept;',
      "console.log('done');",
    ].join('\n');
    const started = Date.now();
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(out.trim()).toBe('done');
    // An unstopped clock does not hold the process either (its timer is unref'd).
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('attemptSignal', () => {
  it('without a plan is the caller signal as it is', () => {
    const controller = new AbortController();
    const { signal, done } = attemptSignal(new HttpRequest({ url: 'https://x.test/', signal: controller.signal }));
    expect(signal).toBe(controller.signal);
    done();
  });

  it('fires with a TimeoutError when the plan passes, and with AbortError when the caller aborts', async () => {
    const plan = { ms: 10, kind: 'attempt' as const, limit: 10 };
    const timed = attemptSignal(new HttpRequest({ url: 'https://x.test/', timeout: plan }));
    await new Promise((resolve) => timed.signal?.addEventListener('abort', resolve));
    expect(timed.signal?.reason).toBeInstanceOf(TimeoutError);

    const controller = new AbortController();
    const aborted = attemptSignal(
      new HttpRequest({ url: 'https://x.test/', timeout: plan, signal: controller.signal }),
    );
    controller.abort();
    expect(aborted.signal?.reason).toBeInstanceOf(AbortError);
    aborted.done();

    const early = attemptSignal(
      new HttpRequest({ url: 'https://x.test/', timeout: plan, signal: AbortSignal.abort() }),
    );
    expect(early.signal?.aborted).toBe(true);
    expect(early.signal?.reason).toBeInstanceOf(AbortError);
    early.done();
  });

  it('done() stops the timer and stops listening to the caller', async () => {
    const controller = new AbortController();
    const { signal, done } = attemptSignal(
      new HttpRequest({
        url: 'https://x.test/',
        timeout: { ms: 5, kind: 'attempt', limit: 5 },
        signal: controller.signal,
      }),
    );
    done();
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    expect(signal?.aborted).toBe(false);
  });
});

describe('undiciTransport options', () => {
  it.each([
    [{ connections: 0 }, /connections must be a positive integer/],
    [{ connections: 1.5 }, /connections must be a positive integer/],
    [{ dispatcher: new Agent(), proxy: 'http://p.test:1' }, /either dispatcher, or proxy\/tls options/],
    [{ proxy: 'not a url' }, /proxy must be an absolute URL/],
  ])('%j is a ConfigError', (options, message) => {
    expect(() => undiciTransport(options)).toThrow(message);
  });
});

/** A TCP relay to `port` that reports each new connection. */
async function tcpRelay(port: number, onConnection: () => void) {
  const sockets = new Set<Socket>();
  const { createServer } = await import('node:net');
  const server = createServer((socket) => {
    onConnection();
    const upstream = connect(port, '127.0.0.1');
    for (const s of [socket, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An HTTP proxy that only tunnels (CONNECT), recording each target. */
async function connectProxy() {
  const tunnels: string[] = [];
  const sockets = new Set<Socket>();
  const { createServer } = await import('node:http');
  const server = createServer((_, response) => {
    response.writeHead(405);
    response.end();
  });
  server.on('connect', (request, socket: Socket, head: Buffer) => {
    tunnels.push(request.url ?? '');
    const [host = '', targetPort = ''] = (request.url ?? '').split(':');
    const upstream = connect(Number(targetPort), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    for (const s of [socket, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tunnels,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
