import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HttpRequest } from '../../src/index.js';
import { isReplayable } from '../../src/internals.js';
import { nextRequestId } from '../../src/request.js';

describe('HttpRequest', () => {
  it('has fetch-like defaults', () => {
    const request = new HttpRequest({ url: 'https://x.test/' });
    expect(request).toMatchObject({ method: 'GET', body: null, signal: undefined, context: {}, timeout: undefined });
    expect(request.headers).toBeInstanceOf(Headers);
    expect(request.options).toEqual({});
    expect(Object.isFrozen(request.options)).toBe(true);
    expect(request.state).toMatchObject({ attempts: 0, generation: undefined, bodySent: false });
  });

  it('with() derives a copy that shares the call state, leaving the original as it was', () => {
    const headers = new Headers({ a: '1' });
    const request = new HttpRequest({ url: 'https://x.test/', method: 'POST', headers, body: 'b', context: { c: 1 } });
    const copy = request.with({ url: 'https://x.test/other' });
    expect(copy).not.toBe(request);
    expect(copy).toMatchObject({ method: 'POST', body: 'b', url: 'https://x.test/other', context: { c: 1 } });
    expect(copy.headers).toBe(headers);
    expect(copy.state).toBe(request.state);
    expect(request.url).toBe('https://x.test/');
  });

  it('withHeader() sets or removes one header on a copy of the headers', () => {
    const request = new HttpRequest({ url: 'https://x.test/', headers: new Headers({ a: '1', b: '2' }) });
    const added = request.withHeader('c', '3');
    const removed = request.withHeader('a', null);
    expect([...added.headers]).toEqual([
      ['a', '1'],
      ['b', '2'],
      ['c', '3'],
    ]);
    expect([...removed.headers]).toEqual([['b', '2']]);
    expect([...request.headers]).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
  });

  it('gives each call a distinct id', () => {
    const ids = new Set(Array.from({ length: 100 }, () => nextRequestId()));
    expect(ids.size).toBe(100);
    expect(new HttpRequest({ url: 'https://x.test/' }).state.id).not.toBe(
      new HttpRequest({ url: 'https://x.test/' }).state.id,
    );
  });
});

describe('isReplayable', () => {
  it.each([
    ['null', null, true],
    ['a string', 's', true],
    ['bytes', new Uint8Array(1), true],
    ['an ArrayBuffer', new ArrayBuffer(1), true],
    ['URLSearchParams', new URLSearchParams(), true],
    ['FormData', new FormData(), true],
    ['a Blob', new Blob([]), true],
    ['a factory', () => 'x', true],
    ['a web stream', new Blob(['x']).stream(), false],
    ['a Node stream', Readable.from(['x']), false],
  ])('%s: %s', (_, body, expected) => {
    expect(isReplayable(body as HttpRequest['body'])).toBe(expected);
  });
});
