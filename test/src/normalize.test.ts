import { describe, expect, it } from 'vitest';
import {
  AbortError,
  createClient,
  NetworkError,
  ParseError,
  REDACTED,
  SluiceError,
  TimeoutError,
} from '../../src/index.js';
import { parseJson, toSluiceError } from '../../src/internals.js';
import type { RequestMeta } from '../../src/normalize.js';
import { json, startServer } from '../helpers/server.js';
import { rejection } from '../helpers/wait.js';

const meta = { method: 'GET', url: 'https://x.test/a?token=t-secret' };
const coded = (code: string, message = 'boom') => Object.assign(new Error(message), { code });

describe('toSluiceError', () => {
  it('returns a SluiceError as it is', () => {
    const error = new SluiceError('x');
    expect(toSluiceError(error, meta)).toBe(error);
  });

  it.each([
    ['UND_ERR_SOCKET', 'ECONNRESET', true],
    ['UND_ERR_CONNECT_TIMEOUT', 'ECONNECT_TIMEOUT', false],
    ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'ERR_CONTENT_LENGTH_MISMATCH', true],
    ['UND_ERR_HEADERS_OVERFLOW', 'ERR_HEADERS_OVERFLOW', true],
    ['ECONNREFUSED', 'ECONNREFUSED', false],
    ['ENOTFOUND', 'ENOTFOUND', false],
    ['EAI_AGAIN', 'EAI_AGAIN', false],
    ['EHOSTUNREACH', 'EHOSTUNREACH', false],
    ['EPIPE', 'EPIPE', true],
  ])('maps %s to a retryable NetworkError %s (sent: %s)', (raw, code, sent) => {
    const error = toSluiceError(coded(raw), meta);
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({
      code,
      sent,
      retryable: true,
      method: 'GET',
      url: `https://x.test/a?token=${REDACTED}`,
    });
    expect(error.message).not.toContain('boom');
  });

  it('an undici parser error (no code, by name) is a NetworkError ERR_BAD_RESPONSE, also under fetch', () => {
    const parser = Object.assign(new Error('Response does not match the HTTP/1.1 protocol'), {
      name: 'HTTPParserError',
    });
    for (const raw of [parser, new TypeError('terminated', { cause: parser })]) {
      expect(toSluiceError(raw, meta)).toMatchObject({ name: 'NetworkError', code: 'ERR_BAD_RESPONSE', sent: true });
    }
  });

  it('a refused certificate was never sent and is not retried: a retry meets the same certificate', () => {
    for (const raw of [
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'ERR_TLS_CERT_ALTNAME_INVALID',
    ]) {
      expect(toSluiceError(coded(raw), meta)).toMatchObject({ code: raw, sent: false, retryable: false });
    }
  });

  it('finds the code on the cause, as fetch reports it', () => {
    const error = toSluiceError(new TypeError('fetch failed', { cause: coded('ECONNREFUSED') }), meta);
    expect(error).toBeInstanceOf(NetworkError);
    expect(error.code).toBe('ECONNREFUSED');
    const deeper = toSluiceError(new TypeError('fetch failed', { cause: { cause: coded('UND_ERR_SOCKET') } }), meta);
    expect(deeper.code).toBe('ECONNRESET');
  });

  it('a fetch failure without a code is still a NetworkError', () => {
    const error = toSluiceError(new TypeError('fetch failed', { cause: new Error('bad port') }), meta);
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ code: 'ENETWORK', retryable: true, method: 'GET' });
    expect(error.url).toBe(`https://x.test/a?token=${REDACTED}`);
  });

  it('an aborted signal wins: its SluiceError reason as it is, anything else as AbortError', () => {
    const controller = new AbortController();
    const reason = new TimeoutError('attempt', 5, meta);
    controller.abort(reason);
    expect(toSluiceError(new Error('aborted'), meta, controller.signal)).toBe(reason);
    const error = toSluiceError(new Error('aborted'), meta, AbortSignal.abort(new Error('user')));
    expect(error).toBeInstanceOf(AbortError);
    expect((error.cause as Error).message).toBe('user');
    expect(toSluiceError(new DOMException('x', 'AbortError'), meta)).toBeInstanceOf(AbortError);
  });

  it("undici's own timeouts become the TimeoutError of the attempt's plan", () => {
    for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']) {
      const planned = toSluiceError(coded(code), { ...meta, timeout: { ms: 10, kind: 'total', limit: 99 } });
      expect(planned).toBeInstanceOf(TimeoutError);
      expect(planned).toMatchObject({ kind: 'total', message: expect.stringContaining('after 99 ms') });
    }
    // Without a plan (a timeout the transport was not asked for) it is a network failure.
    expect(toSluiceError(coded('UND_ERR_HEADERS_TIMEOUT'), meta)).toMatchObject({ code: 'ETIMEDOUT' });
  });

  it('never copies a raw message: a header error quotes the value, so neither is kept', () => {
    const error = toSluiceError(new TypeError('Headers.append: "Bearer s3cret\r\n" is an invalid header value.'), meta);
    expect(error.code).toBe('ERR_INVALID_HEADER');
    expect(error.message).not.toContain('s3cret');
    expect(error.cause).toBeUndefined();
    const invalidChar = toSluiceError(
      Object.assign(new TypeError('Invalid character in header content ["authorization"]'), {
        code: 'ERR_INVALID_CHAR',
      }),
      meta,
    );
    expect(invalidChar.code).toBe('ERR_INVALID_HEADER');
  });

  it.each([
    ['UND_ERR_INVALID_ARG', 'ERR_INVALID_REQUEST', 'invalid request'],
    ['UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_REQUEST', 'invalid request'],
    ['UND_ERR_CLOSED', 'ERR_CLIENT_CLOSED', 'the client is closed'],
    ['UND_ERR_DESTROYED', 'ERR_CLIENT_CLOSED', 'the client is closed'],
  ])('%s (a request undici refused to send) is %s, not a retryable network error', (raw, code, message) => {
    const error = toSluiceError(coded(raw), meta);
    expect(error).not.toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ code, retryable: false });
    expect(error.message).toBe(`[GET] https://x.test/a?token=${REDACTED}: ${message}`);
  });

  it('anything else is a SluiceError ERR_REQUEST that names the request', () => {
    const error = toSluiceError(new RangeError('weird'), meta);
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ code: 'ERR_REQUEST', retryable: false, method: 'GET' });
    expect(error.message).toBe(`[GET] https://x.test/a?token=${REDACTED}: request failed`);
    expect(toSluiceError('a string', meta).code).toBe('ERR_REQUEST');
    expect(toSluiceError(null, meta).code).toBe('ERR_REQUEST');
  });

  it('names the request when the URL is a getter (as the client passes it)', () => {
    class Meta implements RequestMeta {
      readonly method = 'POST';
      get url() {
        return 'https://x.test/lazy';
      }
    }
    expect(toSluiceError(new RangeError('x'), new Meta()).message).toBe('[POST] https://x.test/lazy: request failed');
    expect(toSluiceError(new TypeError('fetch failed'), new Meta()).url).toBe('https://x.test/lazy');
  });
});

describe('parseJson', () => {
  it('parses JSON; an empty body is undefined', () => {
    expect(parseJson('{"a":[1]}', meta)).toEqual({ a: [1] });
    expect(parseJson('null', meta)).toBeNull();
    expect(parseJson('', meta)).toBeUndefined();
  });

  it('invalid JSON is a ParseError with a short, redacted snippet and no V8 message', () => {
    const body = `{"client_secret": "cs-secret", "pad": "${'p'.repeat(500)}`;
    let error: unknown;
    try {
      parseJson(body, meta);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ParseError);
    const parse = error as ParseError;
    expect(parse.snippet.startsWith(`{"client_secret": "${REDACTED}", "pad": "ppp`)).toBe(true);
    expect(parse.snippet.length).toBeLessThanOrEqual(130);
    expect(parse.message).toBe(
      `[GET] https://x.test/a?token=${REDACTED}: invalid JSON in response body (${body.length} bytes)`,
    );
    expect(JSON.stringify(parse)).not.toContain('cs-secret');
  });
});

describe('through the client', () => {
  it('an error raised before the request is sent still names the request', async () => {
    const server = await startServer((_, response) => json(response, 200, {}));
    const api = createClient({ baseURL: server.url });
    const error = (await rejection(api.post('orders?api_key=k-secret', { n: 1n }))) as SluiceError;
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ method: 'POST', url: `${server.url}/orders?api_key=${REDACTED}` });
    expect(error.message).toBe(`[POST] ${server.url}/orders?api_key=${REDACTED}: request failed`);
    expect(server.requests).toBe(0);
    await api.close();
    await server.close();
  });
});
