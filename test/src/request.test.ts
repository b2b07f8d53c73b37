import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HttpRequest } from '../../src/index.js';
import { isReplayable } from '../../src/internals.js';
import { nextRequestId, wireHeaders } from '../../src/request.js';

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

  it('withHeader() on a request whose Headers were never built keeps light fields, read through header()', () => {
    const request = new HttpRequest({ url: 'https://x.test/' });
    const added = request.withHeader('Authorization', 'Bearer one').withHeader('x-b', ' two\t');
    expect(wireHeaders(added)).toEqual(['authorization', 'Bearer one', 'x-b', 'two']);
    expect(added.header('authorization')).toBe('Bearer one');
    expect(added.header('x-none')).toBeNull();
    const replaced = added.withHeader('AUTHORIZATION', 'Bearer two').withHeader('x-b', null);
    expect(wireHeaders(replaced)).toEqual(['authorization', 'Bearer two']);
    expect(wireHeaders(added)).toEqual(['authorization', 'Bearer one', 'x-b', 'two']);
    expect(wireHeaders(request)).toEqual([]);
    // Asking for headers builds them once; from then on they are what the transport sends.
    const built = replaced.headers;
    expect(built).toBeInstanceOf(Headers);
    expect(replaced.headers).toBe(built);
    expect([...built]).toEqual([['authorization', 'Bearer two']]);
    built.set('x-late', '1');
    expect(wireHeaders(replaced)).toBe(built);
    expect(replaced.with({ url: 'https://x.test/2' }).headers).toBe(built);
  });

  it('withHeader() accepts, trims and refuses exactly what Headers does, and never says the value', () => {
    const pool = [
      'a',
      'Z',
      '0',
      ' ',
      '\t',
      '\r',
      '\n',
      '\0',
      'é',
      '\u0100',
      '\u212A',
      '\u{1F600}',
      ':',
      '"',
      '\x7f',
      '-',
    ];
    let seed = 7;
    const pick = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return pool[Math.floor(seed / 65536) % pool.length]!;
    };
    const word = (length: number) => Array.from({ length }, pick).join('');
    for (let i = 0; i < 3000; i++) {
      const name = i % 3 === 0 ? word(1 + (i % 4)) : 'x-secret';
      const value = word(i % 7);
      let expected: string | null | Error;
      try {
        const reference = new Headers();
        reference.set(name, value);
        expected = reference.get(name);
      } catch (error) {
        expected = error as Error;
      }
      let actual: string | null | Error;
      try {
        actual = new HttpRequest({ url: 'https://x.test/' }).withHeader(name, value).header(name.toLowerCase());
      } catch (error) {
        actual = error as Error;
      }
      if (expected instanceof Error) {
        expect(actual, JSON.stringify([name, value])).toBeInstanceOf(TypeError);
        if (value.length > 2) expect((actual as Error).message).not.toContain(value);
      } else expect(actual, JSON.stringify([name, value])).toBe(expected);
    }
  });

  it('with({ headers: undefined }) leaves no header, whether the headers were built or not', () => {
    const light = new HttpRequest({ url: 'https://x.test/' }).withHeader('authorization', 'Bearer t');
    expect([...light.with({ headers: undefined }).headers]).toEqual([]);
    const built = new HttpRequest({ url: 'https://x.test/', headers: new Headers({ authorization: 'Bearer t' }) });
    expect([...built.with({ headers: undefined }).headers]).toEqual([]);
  });

  it('withHeader() takes a value that is not a string as Headers does (as its string)', () => {
    const request = new HttpRequest({ url: 'https://x.test/' }).withHeader('x-n', 5 as unknown as string);
    expect(request.header('x-n')).toBe('5');
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
