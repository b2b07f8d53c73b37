import { FetchError } from 'ofetch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortError,
  AuthError,
  BadRequestError,
  BodyNotReplayableError,
  ConfigError,
  ConflictError,
  createClient,
  ForbiddenError,
  HttpError,
  httpErrorFor,
  isHttpError,
  isSluiceError,
  NetworkError,
  NotFoundError,
  ParseError,
  RateLimitError,
  REDACTED,
  ServerError,
  ServiceUnavailableError,
  SluiceError,
  StoreUnavailableError,
  TimeoutError,
  UnauthorizedError,
} from '../../src/index.js';
import { answerAfter, closedPort, json, startServer, type TestServer } from '../helpers/server.js';
import { rejection } from '../helpers/wait.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer((request, response) => {
    const path = new URL(request.url, 'http://x').pathname.slice(1);
    const status = Number(path);
    if (path === 'slow') answerAfter(response, 5000, () => json(response, 200, {}));
    else if (path === 'text-error') {
      response.writeHead(400, { 'content-type': 'text/plain' });
      response.end('bad thing: password=pw-secret');
    } else if (path === 'bad-json-error') {
      response.writeHead(422, { 'content-type': 'application/json' });
      response.end('{not json');
    } else if (path === 'huge-error') {
      json(response, 500, { blob: 'x'.repeat(70 * 1024) });
    } else if (path === 'redirect-ftp') {
      response.writeHead(302, { location: 'ftp://files.example.test/x' });
      response.end();
    } else if (status >= 200) {
      const headers: Record<string, string> = { 'x-request-id': `rid-${status}` };
      if (status === 429) headers['retry-after'] = '7';
      json(response, status, { error: `e${status}` }, headers);
    } else json(response, 200, { ok: true });
  });
});
afterAll(() => server.close());

describe('status to error class', () => {
  it.each([
    [400, BadRequestError, 'Bad Request', false],
    [401, UnauthorizedError, 'Unauthorized', false],
    [403, ForbiddenError, 'Forbidden', false],
    [404, NotFoundError, 'Not Found', false],
    [409, ConflictError, 'Conflict', false],
    [410, HttpError, 'Gone', false],
    [429, RateLimitError, 'Too Many Requests', true],
    [500, ServerError, 'Internal Server Error', true],
    [501, ServerError, 'Not Implemented', false],
    [502, ServerError, 'Bad Gateway', true],
    [503, ServiceUnavailableError, 'Service Unavailable', true],
    [504, ServerError, 'Gateway Timeout', true],
  ])('%i is a %O with code, retryable, method, redacted URL, attempts', async (status, Class, text, retryable) => {
    const api = createClient({ baseURL: server.url, retry: false });
    const error = await rejection(api.delete(`${status}?token=t-secret&page=1`));
    await api.close();
    expect(error).toBeInstanceOf(Class);
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toBeInstanceOf(SluiceError);
    expect((error as Error).name).toBe(Class.name);
    const url = `${server.url}/${status}?token=${REDACTED}&page=1`;
    expect(error).toMatchObject({
      status,
      statusText: text,
      code: `HTTP_${status}`,
      retryable,
      method: 'DELETE',
      url,
      attempts: 1,
      requestId: `rid-${status}`,
      body: { error: `e${status}` },
    });
    expect((error as Error).message).toBe(`[DELETE] ${url}: ${status} ${text}`);
    expect((error as HttpError).headers.get('content-type')).toBe('application/json');
    expect(isHttpError(error)).toBe(true);
    expect(isSluiceError(error)).toBe(true);
    if (error instanceof RateLimitError) expect(error.retryAfter).toBe(7000);
  });

  it('attempts counts every try of a retried status', async () => {
    const api = createClient({ baseURL: server.url, retry: { limit: 2, baseDelay: 1 } });
    await expect(api.get('502')).rejects.toMatchObject({ name: 'ServerError', attempts: 3 });
    await api.close();
  });

  it('an error body that is text is kept, redacted; one that is not the JSON it claims is kept as text', async () => {
    const api = createClient({ baseURL: server.url });
    const text = (await rejection(api.get('text-error'))) as HttpError;
    expect(text.body).toBe(`bad thing: password=${REDACTED}`);
    const bad = (await rejection(api.get('bad-json-error'))) as HttpError;
    expect(bad).toMatchObject({ status: 422, body: '{not json' });
    const huge = (await rejection(api.get('huge-error', { retry: false }))) as HttpError;
    expect(huge).toBeInstanceOf(ServerError);
    expect(huge.body).toBeUndefined();
    const head = (await rejection(api.head('404'))) as HttpError;
    expect(head).toBeInstanceOf(NotFoundError);
    expect(head.body).toBeUndefined();
    await api.close();
  });
});

describe('nothing the client throws is a bare error', () => {
  it.each([
    ['an HTTP error status', (api: Api) => api.get('404')],
    ['a refused connection', async (api: Api) => api.get(`http://127.0.0.1:${await closedPort()}/`, { retry: false })],
    ['an attempt timeout', (api: Api) => api.get('slow', { timeout: 20, retry: false })],
    ['a deadline', (api: Api) => api.get('slow', { deadline: 20 })],
    ['a caller abort', (api: Api) => api.get('slow', { signal: AbortSignal.timeout(20) })],
    ['invalid JSON', (api: Api) => api.get('bad-json-error', { responseType: 'json' })],
    ['a header value Node rejects', (api: Api) => api.get('x', { headers: { 'x-bad': 'v\r\nInjected: 1' } })],
    ['a body JSON cannot serialize', (api: Api) => api.post('x', { n: 1n })],
    ['a relative URL without baseURL', () => createClient().get('users/1')],
    ['a redirect to another protocol', (api: Api) => api.get('redirect-ftp')],
    ['a URL that is not one', (api: Api) => api.get('http://[::1')],
  ])('%s', async (_, call) => {
    const api = createClient({ baseURL: server.url });
    const error = await rejection(call(api));
    await api.close();
    expect(isSluiceError(error)).toBe(true);
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).not.toBeInstanceOf(TypeError);
    expect(error).not.toBeInstanceOf(FetchError);
    expect((error as SluiceError).code).toMatch(/^[A-Z][A-Z0-9_]+$/);
    expect((error as Error).message).not.toMatch(/Injected|\[object/);
  });

  it('a caller abort is an AbortError; a timeout signal from the caller is one too', async () => {
    const api = createClient({ baseURL: server.url });
    const controller = new AbortController();
    const pending = rejection(api.get('slow', { signal: controller.signal }));
    setTimeout(() => controller.abort(), 10);
    expect(await pending).toBeInstanceOf(AbortError);
    expect(await rejection(api.get('slow', { signal: AbortSignal.timeout(10) }))).toBeInstanceOf(AbortError);
    await api.close();
  });
});

type Api = ReturnType<typeof createClient>;

describe('ConfigError at construction', () => {
  it.each([
    [{ baseURL: 'not a url' }, /baseURL must be an absolute http\(s\) URL such as https:\/\/api\.example\.com/],
    [{ baseURL: 'ftp://x.test/' }, /baseURL must be an absolute http\(s\) URL/],
    [{ timeout: -1 }, /timeout must be a positive number of milliseconds, got -1/],
    [{ timeout: Number.NaN }, /timeout must be a positive number/],
    [{ deadline: 0 }, /deadline must be a positive number/],
    [{ retry: -1 }, /retry.limit must be a non-negative integer, got -1/],
    [{ retry: { baseDelay: -5 } }, /retry.baseDelay must be >= 0/],
    [{ retri: 2 }, /unknown option "retri"; valid options are: baseURL, headers, query, timeout/],
    [{ transport: 'carrier-pigeon' }, /transport must be 'undici', 'fetch' or a Transport/],
    [{ transport: {} }, /transport.send must be a function/],
    [{ transport: 'undici', fetch }, /fetch implies the fetch transport/],
    [{ fetch, proxy: 'http://p:1' }, /apply to the undici transport only/],
    [{ fetch: 'no' }, /fetch must be a function/],
    [{ connections: 0 }, /connections must be a positive integer/],
    [{ proxy: 'nope' }, /proxy must be an absolute URL/],
    [{ dispatcher: {}, tls: {} }, /either dispatcher, or proxy\/tls options/],
    [{ middleware: 'x' }, /middleware must be an array/],
    [{ middleware: [42] }, /every middleware must be a function/],
    [{ maxRedirects: -1 }, /maxRedirects must be a non-negative integer/],
    [{ logger: {} }, /logger must have debug, info, warn and error methods/],
    [{ onEvent: 'x' }, /onEvent must be a function/],
    [{ auth: { grant: undefined } }, /auth needs a grant/],
  ])('%j', (options, message) => {
    let error: unknown;
    try {
      createClient(options as never);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: 'CONFIG', retryable: false, name: 'ConfigError' });
    expect((error as Error).message).toMatch(message);
  });
});

describe('error classes', () => {
  const headers = new Headers({ 'set-cookie': 's=cookie-secret', 'x-correlation-id': 'corr-1' });

  it('toJSON carries a secret-free summary: no headers, no body, the cause reduced to name and code', () => {
    const error = httpErrorFor({
      status: 429,
      statusText: 'Too Many Requests',
      headers,
      body: { echoed: 'body-secret' },
      retryAfter: 2000,
      method: 'GET',
      url: 'https://user:pw-secret@x.test/?api_key=k-secret',
      cause: Object.assign(new Error('inner cause-secret'), { code: 'EX' }),
    });
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error.requestId).toBe('corr-1');
    const json = JSON.parse(JSON.stringify(error));
    expect(json).toEqual({
      name: 'RateLimitError',
      code: 'HTTP_429',
      message: `[GET] https://${REDACTED}:${REDACTED}@x.test/?api_key=${REDACTED}: 429 Too Many Requests`,
      retryable: true,
      method: 'GET',
      url: `https://${REDACTED}:${REDACTED}@x.test/?api_key=${REDACTED}`,
      attempts: 0,
      status: 429,
      requestId: 'corr-1',
      retryAfter: 2000,
      cause: { name: 'Error', code: 'EX' },
    });
    expect(JSON.stringify(error)).not.toMatch(/secret/);
    // Loggers that copy own enumerable fields (pino's err serializer) see neither headers nor body.
    expect(Object.keys(error)).not.toContain('headers');
    expect(Object.keys(error)).not.toContain('body');
    expect(error.body).toEqual({ echoed: 'body-secret' });
  });

  it('every subclass has its name, code and retryable flag', () => {
    const cases: [SluiceError, string, string, boolean][] = [
      [new SluiceError('x'), 'SluiceError', 'ERR_SLUICE', false],
      [new NetworkError('down', { code: 'ENOTFOUND', retryable: true }), 'NetworkError', 'ENOTFOUND', true],
      [new TimeoutError('attempt', 5), 'TimeoutError', 'TIMEOUT_ATTEMPT', true],
      [new TimeoutError('total', 5), 'TimeoutError', 'TIMEOUT_TOTAL', false],
      [new AbortError(), 'AbortError', 'ABORTED', false],
      [new ParseError('bad', 'snip'), 'ParseError', 'PARSE_ERROR', false],
      [new AuthError('no'), 'AuthError', 'AUTH_FAILED', false],
      [new AuthError('no', { oauthError: 'invalid_grant' }), 'AuthError', 'AUTH_INVALID_GRANT', false],
      [new ConfigError('bad'), 'ConfigError', 'CONFIG', false],
      [new BodyNotReplayableError(), 'BodyNotReplayableError', 'BODY_NOT_REPLAYABLE', false],
      [new StoreUnavailableError('down'), 'StoreUnavailableError', 'STORE_UNAVAILABLE', true],
    ];
    for (const [error, name, code, retryable] of cases) {
      expect({ name: error.name, code: error.code, retryable: error.retryable }).toEqual({ name, code, retryable });
      expect(isSluiceError(error)).toBe(true);
      expect(isHttpError(error)).toBe(false);
    }
    expect(JSON.parse(JSON.stringify(new TimeoutError('total', 9)))).toMatchObject({ kind: 'total' });
    expect(JSON.parse(JSON.stringify(new ParseError('bad', 'snip')))).toMatchObject({ snippet: 'snip' });
    expect(
      JSON.parse(JSON.stringify(new AuthError('no', { oauthError: 'invalid_client', status: 401 }))),
    ).toMatchObject({ oauthError: 'invalid_client', status: 401 });
    expect(new SluiceError('plain', { method: 'GET' }).message).toBe('plain');
  });

  it('httpErrorFor picks the class by status', () => {
    const make = (status: number) => httpErrorFor({ status, statusText: '', headers: new Headers() });
    expect(make(400)).toBeInstanceOf(BadRequestError);
    expect(make(401)).toBeInstanceOf(UnauthorizedError);
    expect(make(403)).toBeInstanceOf(ForbiddenError);
    expect(make(404)).toBeInstanceOf(NotFoundError);
    expect(make(409)).toBeInstanceOf(ConflictError);
    expect(make(418).name).toBe('HttpError');
    expect(make(429)).toBeInstanceOf(RateLimitError);
    expect(make(503)).toBeInstanceOf(ServiceUnavailableError);
    expect(make(503)).toBeInstanceOf(ServerError);
    expect(make(599).name).toBe('ServerError');
    expect(make(404).message).toBe('404');
  });

  it('isSluiceError also matches errors from another copy of the package, by name and shape', () => {
    const foreign = Object.assign(new Error('x'), { name: 'NotFoundError', code: 'HTTP_404', retryable: false });
    expect(isSluiceError(foreign)).toBe(true);
    expect(isHttpError(foreign)).toBe(false);
    expect(isHttpError(Object.assign(foreign, { status: 404, headers: new Headers() }))).toBe(true);
    expect(isSluiceError(new Error('x'))).toBe(false);
    expect(isSluiceError(Object.assign(new Error('x'), { name: 'NotFoundError' }))).toBe(false);
    expect(isSluiceError(Object.assign(new Error('x'), { name: 'Other', code: 'X', retryable: true }))).toBe(false);
    expect(isSluiceError(new DOMException('aborted', 'AbortError'))).toBe(false);
    expect(isSluiceError({ name: 'SluiceError', code: 'X', retryable: false })).toBe(false);
    expect(isSluiceError(undefined)).toBe(false);
  });
});
