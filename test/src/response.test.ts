import { describe, expect, it } from 'vitest';
import { type BodySource, HttpResponse, ParseError, TimeoutError } from '../../src/index.js';
import { bytesSource } from '../../src/internals.js';

const meta = { method: 'GET', url: 'https://x.test/a' };
const make = (
  body: BodySource | null = bytesSource('hello'),
  headers: Record<string, string | string[] | undefined> | Headers = {
    'content-type': 'text/plain',
    'set-cookie': ['a=1', 'b=2'],
  },
  status = 200,
) => new HttpResponse({ status, headers, url: 'https://x.test/', body, request: meta });

describe('HttpResponse', () => {
  it("reads the server's headers only: a polluted Object.prototype answers for none", () => {
    Object.defineProperty(Object.prototype, 'location', { value: 'https://evil.test/', configurable: true });
    try {
      const response = make(bytesSource(''), { 'content-type': 'text/plain' });
      expect(response.header('location')).toBeNull();
      expect(response.headers.get('location')).toBeNull();
    } finally {
      delete (Object.prototype as Record<string, unknown>).location;
    }
  });

  it('is fetch-shaped: status, statusText from the status when not given, ok', () => {
    expect(make(null, {}, 201)).toMatchObject({ status: 201, statusText: 'Created', ok: true, url: 'https://x.test/' });
    expect(make(null, {}, 299).ok).toBe(true);
    expect(make(null, {}, 300).ok).toBe(false);
    expect(make(null, {}, 199).ok).toBe(false);
    expect(make(null, {}, 599).statusText).toBe('');
    expect(
      new HttpResponse({ status: 404, statusText: 'Nope', headers: {}, url: '', body: null, request: meta }).statusText,
    ).toBe('Nope');
  });

  it('builds Headers only when asked, keeping repeated headers; header() reads one without building them', () => {
    const response = make();
    expect(response.header('content-type')).toBe('text/plain');
    expect(response.header('set-cookie')).toBe('a=1, b=2');
    expect(response.header('missing')).toBeNull();
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(response.headers).toBe(response.headers);
    expect(make(null, { skipped: undefined, kept: 'k' }).headers.has('skipped')).toBe(false);
    const given = new Headers({ 'x-a': '1' });
    const fromHeaders = make(null, given);
    expect(fromHeaders.headers).toBe(given);
    expect(fromHeaders.header('x-a')).toBe('1');
  });

  it('reads the body once, in any form', async () => {
    expect(await make().bytes()).toEqual(new TextEncoder().encode('hello'));
    expect(new TextDecoder().decode(await make().arrayBuffer())).toBe('hello');
    const blob = await make().blob();
    expect(blob.type).toBe('text/plain');
    expect(await blob.text()).toBe('hello');
    expect((await make(bytesSource('x'), {}).blob()).type).toBe('');
    const used = make();
    expect(used.bodyUsed).toBe(false);
    await used.text();
    expect(used.bodyUsed).toBe(true);
    await expect(used.text()).rejects.toThrow(/already been used/);
    const streamed = make();
    const reader = streamed.body!.getReader();
    expect(streamed.bodyUsed).toBe(true);
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('hello');
  });

  it('a response without a body reads as empty and is settled from the start', async () => {
    const response = make(null);
    let settled = false;
    response.onSettled(() => {
      settled = true;
    });
    expect(settled).toBe(true);
    await expect(response.text()).resolves.toBe('');
    expect(response.body).toBeNull();
    expect((await make(null).arrayBuffer()).byteLength).toBe(0);
  });

  it('runs settle callbacks once, after the body is read, discarded or failed', async () => {
    const discarded = make();
    let settled = 0;
    discarded.onSettled(() => settled++);
    discarded.onSettled(() => settled++);
    expect(settled).toBe(0);
    await discarded.discard();
    await discarded.discard();
    expect(settled).toBe(2);
    discarded.onSettled(() => settled++);
    expect(settled).toBe(3);

    const read = make();
    let readSettled = false;
    read.onSettled(() => {
      readSettled = true;
    });
    await read.text();
    expect(readSettled).toBe(true);
  });

  it('a failing body read is normalized, with the signal reason when it aborted', async () => {
    const failing: BodySource = {
      text: () => Promise.reject(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })),
      arrayBuffer: () => Promise.reject(new Error('x')),
      body: null,
      dump: () => Promise.reject(new Error('dump failed')),
    };
    await expect(make(failing).text()).rejects.toMatchObject({ name: 'NetworkError', code: 'ECONNRESET' });
    const controller = new AbortController();
    const reason = new TimeoutError('attempt', 10, meta);
    controller.abort(reason);
    const timed = new HttpResponse({
      status: 200,
      headers: {},
      url: '',
      body: failing,
      request: meta,
      signal: controller.signal,
    });
    await expect(timed.text()).rejects.toBe(reason);
    // discard() never throws, even when dropping the body fails.
    let settled = false;
    const dropping = make(failing);
    dropping.onSettled(() => {
      settled = true;
    });
    await expect(dropping.discard()).resolves.toBeUndefined();
    expect(settled).toBe(true);
  });

  it('json(): parsed, an empty body undefined, invalid JSON a ParseError', async () => {
    await expect(make(bytesSource('{"a":[1,2]}')).json()).resolves.toEqual({ a: [1, 2] });
    await expect(make(bytesSource('')).json()).resolves.toBeUndefined();
    const error = await make(bytesSource('{"a":'))
      .json()
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ParseError);
    expect(error).toMatchObject({ snippet: '{"a":', method: 'GET', url: 'https://x.test/a' });
  });

  it('bytesSource serves the same bytes to every reader form', async () => {
    const source = bytesSource(new Uint8Array([104, 105]));
    expect(await source.text()).toBe('hi');
    expect(new Uint8Array(await source.arrayBuffer())).toEqual(new Uint8Array([104, 105]));
    expect(await new Response(source.body).text()).toBe('hi');
    await expect(source.dump()).resolves.toBeUndefined();
  });
});
