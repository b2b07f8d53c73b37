import { describe, expect, it } from 'vitest';
import { isSecretName, REDACTED, redactHeaders, redactText, redactUrl, redactValue } from '../../src/index.js';

describe('isSecretName', () => {
  it.each([
    'Authorization',
    'proxy-authorization',
    'Cookie',
    'set-cookie',
    'X-API-Key',
    'api-key',
    'apikey',
    'x-auth-token',
    'x-amz-security-token',
    'access_token',
    'refresh_token',
    'client_secret',
    'password',
    'passwd',
    'api_key',
    'sessionId',
    'signature',
    'private_key',
    'client_assertion',
    'code',
    'sig',
    'key',
  ])('%s is secret', (name) => {
    expect(isSecretName(name)).toBe(true);
  });

  it.each([
    'content-type',
    'accept',
    'x-request-id',
    'page',
    'user',
    'keyword',
    'monkey',
    'zipcode',
  ])('%s is not', (name) => {
    expect(isSecretName(name)).toBe(false);
  });
});

describe('redactUrl', () => {
  it('replaces user info and secret query values, and keeps the rest', () => {
    expect(redactUrl('https://user:pw@x.test/p?access_token=a&page=2&api_key=b&API_KEY=c')).toBe(
      `https://${REDACTED}:${REDACTED}@x.test/p?access_token=${REDACTED}&page=2&api_key=${REDACTED}&API_KEY=${REDACTED}`,
    );
    expect(redactUrl('https://x.test/p?page=2')).toBe('https://x.test/p?page=2');
    expect(redactUrl('https://token@x.test/')).toBe(`https://${REDACTED}@x.test/`);
  });

  it('leaves a URL without query or user info untouched, and never throws on junk', () => {
    expect(redactUrl('https://x.test/plain')).toBe('https://x.test/plain');
    expect(redactUrl('not a url?token=abc')).toBe(`not a url${REDACTED}`);
    expect(redactUrl('users/1?api_key=abc&x=1')).toBe(`users/1${REDACTED}`);
    // User info in a URL that cannot be parsed (no scheme: a path the client could not resolve).
    expect(redactUrl('//user:pw-secret@host/x')).toBe(`//${REDACTED}`);
    expect(redactUrl('a/b?email=x@y.test')).toBe(`a/b${REDACTED}`);
  });
});

describe('redactHeaders', () => {
  it('keeps names, replaces secret values', () => {
    const headers = new Headers({ authorization: 'Bearer t', cookie: 'c=1', 'x-api-key': 'k', accept: 'a' });
    expect(redactHeaders(headers)).toEqual({
      accept: 'a',
      authorization: REDACTED,
      cookie: REDACTED,
      'x-api-key': REDACTED,
    });
  });
});

describe('redactValue', () => {
  it('deep-copies, replacing secret-named fields at any depth', () => {
    const input = { a: [{ refresh_token: 'r' }], deep: { nested: { Authorization: 'x', ok: 1 } }, n: null };
    expect(redactValue(input)).toEqual({
      a: [{ refresh_token: REDACTED }],
      deep: { nested: { Authorization: REDACTED, ok: 1 } },
      n: null,
    });
    expect(input.a[0]?.refresh_token).toBe('r');
    expect(redactValue('plain')).toBe('plain');
  });

  it('bounds depth and array size', () => {
    let deep: unknown = { password: 'p' };
    for (let i = 0; i < 12; i++) deep = { d: deep };
    expect(JSON.stringify(redactValue(deep))).not.toContain('"p"');
    expect((redactValue(Array.from({ length: 500 }, (_, i) => i)) as unknown[]).length).toBe(100);
  });
});

describe('redactText', () => {
  it('redacts JSON pairs and form pairs in free text', () => {
    expect(redactText('{"password":"p1","name":"n","client_secret":"s"} token=abc&x=1')).toBe(
      `{"password":"${REDACTED}","name":"n","client_secret":"${REDACTED}"} token=${REDACTED}&x=1`,
    );
    expect(redactText('{"access_token": "a\\"b", "ok": true}')).toBe(`{"access_token": "${REDACTED}", "ok": true}`);
    expect(redactText('api-key: abc123; path=/')).toBe(`api-key: ${REDACTED}; path=/`);
  });

  it('redacts a value cut short by a snippet', () => {
    expect(redactText('{"password":"hunt')).toBe(`{"password":"${REDACTED}"`);
  });

  it('leaves ordinary text alone', () => {
    expect(redactText('{"name":"alice","page":2}')).toBe('{"name":"alice","page":2}');
  });
});
