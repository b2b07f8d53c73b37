import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { logEvents, logging, timeout } from '../../middleware/index.js';
import { bufferBody } from '../../src/body.js';
import {
  AbortError,
  AuthError,
  BodyNotReplayableError,
  compose,
  fetchTransport,
  HttpRequest,
  HttpResponse,
  httpErrorFor,
  NetworkError,
  RateLimitError,
  REDACTED,
  redactText,
  redactUrl,
  redactValue,
  SluiceError,
  TimeoutError,
} from '../../src/index.js';
import { bytesSource, instrument, toSluiceError } from '../../src/internals.js';
import { startServer } from '../helpers/server.js';

const meta = { method: 'GET', url: 'https://x.test/a?token=t-secret' };

describe('HttpResponse', () => {
  const make = (
    body = 'hello',
    headers: Record<string, string | string[]> = { 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'] },
  ) => new HttpResponse({ status: 200, headers, url: 'https://x.test/', body: bytesSource(body), request: meta });

  it('reads the body once, in any form', async () => {
    expect(await make().bytes()).toEqual(new TextEncoder().encode('hello'));
    const blob = await make().blob();
    expect(blob.type).toBe('text/plain');
    expect(await blob.text()).toBe('hello');
    const used = make();
    await used.text();
    expect(used.bodyUsed).toBe(true);
    await expect(used.text()).rejects.toThrow(/already been used/);
    const streamed = make();
    const reader = streamed.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('hello');
  });

  it('runs settle callbacks once, after the body is read or discarded', async () => {
    const response = make();
    let settled = 0;
    response.onSettled(() => settled++);
    await response.discard();
    await response.discard();
    expect(settled).toBe(1);
    response.onSettled(() => settled++);
    expect(settled).toBe(2);
  });

  it('json() of an empty body is undefined; of invalid JSON a ParseError', async () => {
    await expect(make('').json()).resolves.toBeUndefined();
    await expect(make('{"a":').json()).rejects.toMatchObject({ name: 'ParseError', snippet: '{"a":' });
  });
});

describe('toSluiceError', () => {
  it('maps what transports throw', () => {
    const reset = toSluiceError(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), meta);
    expect(reset).toBeInstanceOf(NetworkError);
    expect(reset.code).toBe('ECONNRESET');
    const fetchFailed = toSluiceError(new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } }), meta);
    expect(fetchFailed.code).toBe('ENOTFOUND');
    expect(toSluiceError(new DOMException('x', 'AbortError'), meta)).toBeInstanceOf(AbortError);
    const controller = new AbortController();
    const timeoutError = new TimeoutError('attempt', 5, meta);
    controller.abort(timeoutError);
    expect(toSluiceError(new Error('aborted'), meta, controller.signal)).toBe(timeoutError);
    const other = toSluiceError(new RangeError('weird'), meta);
    expect(other).toBeInstanceOf(SluiceError);
    expect(other.code).toBe('ERR_REQUEST');
    expect(other.url).not.toContain('t-secret');
    const planned = toSluiceError(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), {
      ...meta,
      timeout: { ms: 10, kind: 'total', limit: 99 },
    });
    expect(planned).toBeInstanceOf(TimeoutError);
    expect((planned as TimeoutError).kind).toBe('total');
  });
});

describe('errors', () => {
  it('toJSON carries the summary but neither headers nor body', () => {
    const error = httpErrorFor({
      status: 429,
      statusText: 'Too Many Requests',
      headers: new Headers({ 'set-cookie': 's=secret-cookie', 'x-request-id': 'r-1' }),
      body: { echoed: 'secret-body' },
      retryAfter: 2000,
      method: 'GET',
      url: 'https://x.test/?api_key=k-secret',
    });
    expect(error).toBeInstanceOf(RateLimitError);
    const json = JSON.stringify(error);
    expect(JSON.parse(json)).toMatchObject({
      name: 'RateLimitError',
      status: 429,
      retryAfter: 2000,
      requestId: 'r-1',
      code: 'HTTP_429',
    });
    expect(json).not.toMatch(/secret/);
    expect(Object.keys(error)).not.toContain('headers');
    expect(httpErrorFor({ status: 418, statusText: '', headers: new Headers() }).name).toBe('HttpError');
    expect(httpErrorFor({ status: 502, statusText: '', headers: new Headers() }).name).toBe('ServerError');
    const auth = new AuthError('no', { oauthError: 'invalid_grant', cause: new Error('inner') });
    expect(JSON.parse(JSON.stringify(auth))).toMatchObject({ code: 'AUTH_INVALID_GRANT', cause: { name: 'Error' } });
  });
});

describe('redaction helpers', () => {
  it('redacts user info and secret query values, and tolerates junk', () => {
    expect(redactUrl('https://user:pw@x.test/p?access_token=a&page=2&api_key=b')).toBe(
      `https://${REDACTED}:${REDACTED}@x.test/p?access_token=${REDACTED}&page=2&api_key=${REDACTED}`,
    );
    expect(redactUrl('https://x.test/plain')).toBe('https://x.test/plain');
    expect(redactUrl('not a url?token=abc')).toBe(`not a url${REDACTED}`);
    expect(redactText('{"password":"p1","name":"n","client_secret":"s"} token=abc&x=1')).toBe(
      `{"password":"${REDACTED}","name":"n","client_secret":"${REDACTED}"} token=${REDACTED}&x=1`,
    );
    expect(redactValue({ a: [{ refresh_token: 'r' }], deep: { nested: { Authorization: 'x' } } })).toEqual({
      a: [{ refresh_token: REDACTED }],
      deep: { nested: { Authorization: REDACTED } },
    });
  });
});

describe('bodies', () => {
  it('bufferBody reads a stream up to its limit, and refuses a larger one', async () => {
    const buffered = await bufferBody(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 10);
    expect(Buffer.from(buffered as Uint8Array).toString()).toBe('abcd');
    await expect(bufferBody(Readable.from([Buffer.alloc(20)]), 10)).rejects.toBeInstanceOf(BodyNotReplayableError);
    expect(await bufferBody('already replayable', 1)).toBe('already replayable');
  });
});

describe('timeout() on its own, over the fetch transport', () => {
  it('limits an attempt without retry()', async () => {
    const server = await startServer((_, response) => {
      setTimeout(() => response.end('{}'), 500);
    });
    const run = compose([timeout({ timeout: 50 })], instrument(fetchTransport().send));
    const error = await run(new HttpRequest({ url: `${server.url}/slow` })).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).kind).toBe('attempt');
    await server.close();
    expect(() => timeout({ timeout: -1 })).toThrow(/timeout must be a positive number/);
  });
});

describe('logging', () => {
  it('writes a debug line per request with redacted headers and body, and token events', async () => {
    const lines: { level: string; fields: Record<string, unknown> }[] = [];
    const at = (level: string) => (fields: object) => lines.push({ level, fields: fields as Record<string, unknown> });
    const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
    const run = compose([logging({ logger, level: 'debug' })], async (request) => {
      request.events?.({
        type: 'retry',
        requestId: 'r',
        method: 'POST',
        url: request.url,
        attempt: 1,
        reason: 'status 503',
        delayMs: 5,
      });
      return new HttpResponse({ status: 200, headers: {}, url: request.url, body: null, request });
    });
    await run(
      new HttpRequest({
        method: 'POST',
        url: 'https://x.test/a',
        headers: new Headers({ authorization: 'Bearer b-secret', 'x-plain': 'p' }),
        body: new URLSearchParams({ password: 'p-secret', user: 'u' }),
      }),
    );
    await run(new HttpRequest({ method: 'POST', url: 'https://x.test/b', body: new Uint8Array([1]) }));
    expect(lines[0]).toMatchObject({
      level: 'debug',
      fields: { headers: { authorization: REDACTED, 'x-plain': 'p' } },
    });
    expect(String(lines[0]!.fields.body)).toBe(`password=${REDACTED}&user=u`);
    expect(lines[1]).toMatchObject({ level: 'warn', fields: { sluice: 'retry', delayMs: 5 } });
    expect(lines[2]!.fields.body).toBe('[Uint8Array]');
    const tokenLines: string[] = [];
    const log = logEvents({
      logger: { ...logger, warn: (_: object, message?: string) => tokenLines.push(message ?? '') },
    });
    log({ type: 'token', action: 'store-unavailable', key: 'k', reason: 'going on from memory' });
    expect(tokenLines).toEqual(['token store-unavailable: going on from memory']);
  });
});
