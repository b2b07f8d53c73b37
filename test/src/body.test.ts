import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { bufferBody, canResend, wireBody } from '../../src/body.js';
import { BodyNotReplayableError, HttpRequest, SluiceError } from '../../src/index.js';

const post = (body: HttpRequest['body']) => new HttpRequest({ method: 'POST', url: 'https://x.test/', body });

describe('wireBody', () => {
  it('passes replayable bodies as they are, with the content type they imply', () => {
    expect(wireBody(post(null))).toEqual({ body: null, contentType: undefined, oneShot: false });
    expect(wireBody(post('s'))).toEqual({ body: 's', contentType: undefined, oneShot: false });
    const bytes = new Uint8Array([1, 2]);
    expect(wireBody(post(bytes)).body).toBe(bytes);
    expect(wireBody(post(bytes.buffer)).body).toEqual(bytes);
    expect(wireBody(post(new URLSearchParams({ a: 'b c' })))).toEqual({
      body: 'a=b+c',
      contentType: 'application/x-www-form-urlencoded;charset=UTF-8',
      oneShot: false,
    });
    const form = new FormData();
    expect(wireBody(post(form))).toEqual({ body: form, contentType: undefined, oneShot: false });
    expect(wireBody(post(new Blob(['x'], { type: 'text/csv' }))).contentType).toBe('text/csv');
    expect(wireBody(post(new Blob(['x']))).contentType).toBeUndefined();
  });

  it('a stream goes once; its second send is a BodyNotReplayableError', () => {
    const request = post(Readable.from(['x']));
    expect(canResend(request)).toBe(true);
    expect(wireBody(request).oneShot).toBe(true);
    expect(request.state.bodySent).toBe(true);
    expect(canResend(request)).toBe(false);
    expect(() => wireBody(request)).toThrow(BodyNotReplayableError);
  });

  it('a body factory is called for each send and is never one-shot', () => {
    let calls = 0;
    const request = post(() => {
      calls++;
      return Readable.from(['x']);
    });
    expect(wireBody(request).oneShot).toBe(false);
    expect(wireBody(request).oneShot).toBe(false);
    expect(calls).toBe(2);
    expect(canResend(request)).toBe(true);
    expect(wireBody(post(() => 'text')).body).toBe('text');
  });

  it('an async iterable becomes a Node stream; anything else is refused', async () => {
    async function* chunks() {
      yield new TextEncoder().encode('a');
    }
    const wire = wireBody(post(chunks()));
    expect(wire.body).toBeInstanceOf(Readable);
    expect(wire.oneShot).toBe(true);
    const error = (() => {
      try {
        wireBody(post({} as never));
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toMatchObject({ code: 'ERR_BODY_TYPE', method: 'POST', url: 'https://x.test/' });
  });
});

describe('bufferBody', () => {
  it('reads a stream up to its limit so it can be re-sent', async () => {
    const buffered = await bufferBody(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 4);
    expect(Buffer.from(buffered as Uint8Array).toString()).toBe('abcd');
    const fromStrings = await bufferBody(Readable.from(['x', 'y'], { objectMode: true }), 10);
    expect(Buffer.from(fromStrings as Uint8Array).toString()).toBe('xy');
    const web = await bufferBody(new Blob(['web']).stream(), 10);
    expect(Buffer.from(web as Uint8Array).toString()).toBe('web');
  });

  it('refuses a larger stream before anything is sent', async () => {
    const error = await bufferBody(Readable.from([Buffer.alloc(6), Buffer.alloc(6)]), 10).catch((caught) => caught);
    expect(error).toBeInstanceOf(BodyNotReplayableError);
    expect(error).toMatchObject({ code: 'BODY_TOO_LARGE_TO_BUFFER' });
  });

  it('leaves replayable bodies alone', async () => {
    const form = new FormData();
    expect(await bufferBody('already replayable', 1)).toBe('already replayable');
    expect(await bufferBody(form, 1)).toBe(form);
    expect(await bufferBody(null, 1)).toBeNull();
  });
});
