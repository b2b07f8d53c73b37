/**
 * `responseType: 'stream'` over the undici transport: the body is handed out as a web stream over
 * undici's Node stream, chunk by chunk, with backpressure, and every way it can end (read to the end,
 * cut by the server, cancelled by the reader) ends the stream and the connection.
 */

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Agent, interceptors } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, HttpResponse, type SluiceClient } from '../../src/index.js';
import { startServer, type TestServer } from '../helpers/server.js';

const CHUNK = 64 * 1024;
const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const item of opened.splice(0)) await item.close();
});

async function serve(answer: (response: ServerResponse) => void): Promise<{ server: TestServer; api: SluiceClient }> {
  const server = await startServer((_, response) => answer(response));
  const api = createClient({ baseURL: server.url });
  opened.push(api, server);
  return { server, api };
}

/** Writes `total` bytes of 'a' in 64 KB chunks, each after the previous one drained; counts what went out. */
function writeSlowly(response: ServerResponse, total: number, written: { bytes: number }) {
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  const chunk = Buffer.alloc(CHUNK, 97);
  const next = () => {
    while (written.bytes < total) {
      written.bytes += CHUNK;
      if (!response.write(chunk)) {
        response.once('drain', next);
        return;
      }
    }
    response.end();
  };
  next();
}

/** Writes `body` in pieces of 300 kB (several socket reads on the other side), then ends. */
function endInPieces(response: ServerResponse, body: Buffer): void {
  for (let at = 0; at < body.length; at += 300_000) response.write(body.subarray(at, at + 300_000));
  response.end();
}

/** How many chunks `run` put on a byte stream as undici's own Buffers (handed over), not as copies. */
async function countHandedOver(run: () => Promise<void>): Promise<number> {
  const prototype = ReadableByteStreamController.prototype;
  const enqueue = prototype.enqueue;
  let handed = 0;
  prototype.enqueue = function (this: ReadableByteStreamController, chunk: ArrayBufferView) {
    if (Buffer.isBuffer(chunk)) handed++;
    return enqueue.call(this, chunk);
  };
  try {
    await run();
  } finally {
    prototype.enqueue = enqueue;
  }
  return handed;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<number> {
  let size = 0;
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    expect(chunk).toBeInstanceOf(Uint8Array);
    size += chunk.byteLength;
  }
  return size;
}

describe("responseType: 'stream' (undici transport)", () => {
  it('holds a large body back while nobody reads, then hands over every byte', async () => {
    const total = 48 * 1024 * 1024;
    const written = { bytes: 0 };
    const { api } = await serve((response) => writeSlowly(response, total, written));
    const stream = await api.get<ReadableStream<Uint8Array>>('big', { responseType: 'stream' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Socket buffers and 16 queued chunks at most: far from the whole body.
    expect(written.bytes).toBeLessThan(total / 3);
    expect(await readAll(stream)).toBe(total);
    expect(written.bytes).toBe(total);
  });

  it("hands out chunks that own their memory: no byte of the response's head (its Set-Cookie) behind them", async () => {
    const { api } = await serve((response) => {
      response.writeHead(200, { 'set-cookie': 'session=SECRET-COOKIE-VALUE', 'content-type': 'text/plain' });
      response.end('hello stream');
    });
    const stream = await api.get<ReadableStream<Uint8Array>>('s', { responseType: 'stream' });
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    expect(Buffer.concat(chunks).toString()).toBe('hello stream');
    for (const chunk of chunks) {
      expect(chunk.constructor).toBe(Uint8Array);
      expect(chunk.buffer.byteLength).toBe(chunk.byteLength);
      expect(Buffer.from(chunk.buffer).toString()).not.toContain('SECRET');
    }
  });

  it.each([
    'content-length',
    'chunked',
  ])('a body of many socket reads (%s): every chunk shows only itself, the first one (read with the head) too', async (framing) => {
    const body = Buffer.alloc(2 * 1024 * 1024, 98);
    const { api } = await serve((response) => {
      const length = framing === 'chunked' ? {} : { 'content-length': String(body.length) };
      response.writeHead(200, { 'set-cookie': 'session=SECRET-COOKIE-VALUE', ...length });
      endInPieces(response, body);
    });
    const stream = await api.get<ReadableStream<Uint8Array>>('big', { responseType: 'stream' });
    const chunks: Uint8Array[] = [];
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    for (const chunk of chunks) {
      expect(chunk.byteOffset).toBe(0);
      expect(chunk.buffer.byteLength).toBe(chunk.byteLength);
      expect(Buffer.from(chunk.buffer).includes('SECRET')).toBe(false);
    }
  });

  it("hands undici's whole-buffer chunks over without a copy (its own Agent)", async () => {
    const body = Buffer.alloc(2 * 1024 * 1024, 99);
    const { api } = await serve((response) => {
      response.writeHead(200, { 'content-length': String(body.length) });
      endInPieces(response, body);
    });
    const handed = await countHandedOver(async () => {
      const stream = await api.get<ReadableStream<Uint8Array>>('big', { responseType: 'stream' });
      expect(await readAll(stream)).toBe(body.length);
    });
    expect(handed).toBeGreaterThan(0);
  });

  it('takes nothing over from a dispatcher of yours: a cache interceptor serves the same body twice', async () => {
    const body = Buffer.alloc(2 * 1024 * 1024, 100);
    let served = 0;
    const server = await startServer((_, response) => {
      served++;
      response.writeHead(200, { 'content-length': String(body.length), 'cache-control': 'max-age=60' });
      endInPieces(response, body);
    });
    const agent = new Agent();
    const api = createClient({ baseURL: server.url, dispatcher: agent.compose(interceptors.cache()) });
    opened.push(api, agent, server);
    const handed = await countHandedOver(async () => {
      for (let i = 0; i < 2; i++) {
        const stream = await api.get<ReadableStream<Uint8Array>>('cached', { responseType: 'stream' });
        const chunks: Uint8Array[] = [];
        for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
        expect(Buffer.concat(chunks).equals(body)).toBe(true);
      }
    });
    expect(served).toBe(1);
    expect(handed).toBe(0);
  });

  it("takes nothing over while undici's body channel has a subscriber: what it kept stays whole", async () => {
    const body = Buffer.alloc(2 * 1024 * 1024, 101);
    const { api } = await serve((response) => {
      response.writeHead(200, { 'content-length': String(body.length) });
      endInPieces(response, body);
    });
    const kept: Buffer[] = [];
    const keep = (message: unknown) => kept.push((message as { chunk: Buffer }).chunk);
    subscribe('undici:request:bodyChunkReceived', keep);
    try {
      const stream = await api.get<ReadableStream<Uint8Array>>('watched', { responseType: 'stream' });
      expect(await readAll(stream)).toBe(body.length);
    } finally {
      unsubscribe('undici:request:bodyChunkReceived', keep);
    }
    expect(Buffer.concat(kept).equals(body)).toBe(true);
  });

  it('a streamed body on a connection the server closes ends whole, and the next call works', async () => {
    const body = Buffer.alloc(1024 * 1024, 102);
    const { api } = await serve((response) => {
      response.writeHead(200, { 'content-length': String(body.length), connection: 'close' });
      endInPieces(response, body);
    });
    for (let i = 0; i < 3; i++) {
      const stream = await api.get<ReadableStream<Uint8Array>>(`close-${i}`, { responseType: 'stream' });
      const chunks: Uint8Array[] = [];
      for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
      expect(Buffer.concat(chunks).equals(body)).toBe(true);
    }
  });

  it('is a byte stream: a BYOB reader reads it', async () => {
    const { api } = await serve((response) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('byob body');
    });
    const stream = await api.get<ReadableStream<Uint8Array>>('b', { responseType: 'stream' });
    const reader = stream.getReader({ mode: 'byob' });
    let text = '';
    for (;;) {
      const { done, value } = await reader.read(new Uint8Array(4));
      if (done) break;
      text += Buffer.from(value).toString();
    }
    expect(text).toBe('byob body');
  });

  it('fails the stream, never hangs, when the server cuts the body short', async () => {
    const { api } = await serve((response) => {
      response.writeHead(200, { 'content-length': String(4 * CHUNK) });
      response.write(Buffer.alloc(CHUNK, 97));
      setTimeout(() => response.socket?.destroy(), 50);
    });
    const stream = await api.get<ReadableStream<Uint8Array>>('cut', { responseType: 'stream' });
    await expect(readAll(stream)).rejects.toBeDefined();
  });

  it('a reader that cancels ends the connection: the server sees it closed', async () => {
    const written = { bytes: 0 };
    let closed = false;
    const { api } = await serve((response) => {
      response.on('close', () => {
        closed = true;
      });
      writeSlowly(response, 64 * 1024 * 1024, written);
    });
    const stream = await api.get<ReadableStream<Uint8Array>>('cancel', { responseType: 'stream' });
    const reader = stream.getReader();
    expect((await reader.read()).done).toBe(false);
    await reader.cancel();
    for (let i = 0; i < 50 && !closed; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed).toBe(true);
    expect(written.bytes).toBeLessThan(64 * 1024 * 1024);
  });
});

/** WebAssembly memory: a buffer a byte stream cannot take over. */
interface Memory {
  readonly buffer: ArrayBuffer;
}

describe('HttpResponse.body over a Node stream', () => {
  const response = (readable: Readable, freshChunks?: boolean) =>
    new HttpResponse({
      status: 200,
      headers: {},
      url: 'https://x.test/',
      body: readable as never,
      request: { method: 'GET', url: 'https://x.test/' },
      ...(freshChunks === undefined ? {} : { freshChunks }),
    });

  it("never takes over the buffers of a stream that is not undici's: the producer keeps its bytes", async () => {
    const kept = new Uint8Array(16).fill(7);
    const answer = response(Readable.from([kept, kept]));
    expect(new Uint8Array(await new Response(answer.body).arrayBuffer())).toEqual(new Uint8Array(32).fill(7));
    expect(kept.byteLength).toBe(16);
    expect(kept[0]).toBe(7);
  });

  it('a polluted Object.prototype.freshChunks does not make them fresh', async () => {
    const kept = new Uint8Array(16).fill(7);
    Object.defineProperty(Object.prototype, 'freshChunks', { value: true, configurable: true, writable: true });
    try {
      const answer = response(Readable.from([kept]));
      await new Response(answer.body).arrayBuffer();
    } finally {
      delete (Object.prototype as { freshChunks?: unknown }).freshChunks;
    }
    expect(kept.byteLength).toBe(16);
  });

  it('fresh chunks: one that is all of its buffer is handed over, a view into a larger or untransferable one is copied', async () => {
    const whole = new Uint8Array(8).fill(1);
    const backing = Buffer.from('HEAD-SECRET|view');
    const view = backing.subarray(12);
    const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => Memory } })
      .WebAssembly;
    // All of their buffers, but buffers a stream cannot take over: copied.
    const wasm = new Uint8Array(new Memory({ initial: 1 }).buffer).fill(3);
    const shared = new Uint8Array(new SharedArrayBuffer(6)).fill(4);
    const answer = response(Readable.from([whole, view, wasm, shared]), true);
    const chunks: Uint8Array[] = [];
    for await (const chunk of answer.body as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    expect(chunks.map((chunk) => Buffer.from(chunk).toString('hex'))).toEqual([
      '0101010101010101',
      Buffer.from('view').toString('hex'),
      '03'.repeat(65536),
      '040404040404',
    ]);
    for (const chunk of chunks) expect(chunk.buffer.byteLength).toBe(chunk.byteLength);
    // Taken over: the producer's view of it is detached (it was undici's, and undici is done with it).
    expect(whole.byteLength).toBe(0);
    expect(backing.toString()).toBe('HEAD-SECRET|view');
    expect(wasm.byteLength).toBe(65536);
    expect(shared.byteLength).toBe(6);
  });

  it('a stream of strings (an encoding set) gives their UTF-8 bytes; one of objects fails the body, never ends short', async () => {
    const text = response(Readable.from(['{"a":', '"é"}']));
    expect(await new Response(text.body).text()).toBe('{"a":"é"}');
    const objects = response(Readable.from([{ not: 'bytes' }]));
    await expect(new Response(objects.body).text()).rejects.toThrow('must be bytes or a string');
  });

  it('fresh chunks: a body channel subscriber there when the response is made means copies, even once it has left', async () => {
    const chunk = new Uint8Array(8).fill(5);
    const listener = () => {};
    subscribe('undici:request:bodyChunkReceived', listener);
    let answer: HttpResponse;
    try {
      answer = response(Readable.from([chunk]), true);
    } finally {
      unsubscribe('undici:request:bodyChunkReceived', listener);
    }
    expect(new Uint8Array(await new Response(answer.body).arrayBuffer())).toEqual(new Uint8Array(8).fill(5));
    expect(chunk.byteLength).toBe(8);
  });

  it('fresh chunks: a body channel subscriber that comes later means copies from then on, after it has left too', async () => {
    const first = new Uint8Array(4).fill(1);
    const second = new Uint8Array(4).fill(2);
    const readable = new Readable({ read() {} });
    const answer = response(readable, true);
    const reader = answer.body!.getReader();
    readable.push(first);
    expect([...(await reader.read()).value!]).toEqual([1, 1, 1, 1]);
    expect(first.byteLength).toBe(0);
    const listener = () => {};
    subscribe('undici:request:bodyChunkReceived', listener);
    try {
      readable.push(second);
      expect([...(await reader.read()).value!]).toEqual([2, 2, 2, 2]);
    } finally {
      unsubscribe('undici:request:bodyChunkReceived', listener);
    }
    expect(second.byteLength).toBe(4);
    // Gone again: it may still hold what it was given, and this body keeps copying.
    const third = new Uint8Array(4).fill(3);
    readable.push(third);
    expect([...(await reader.read()).value!]).toEqual([3, 3, 3, 3]);
    expect(third.byteLength).toBe(4);
  });

  it('is one stream however often it is asked for', async () => {
    const answer = response(Readable.from([Buffer.from('ab'), Buffer.from('cd')]));
    expect(answer.body).toBe(answer.body);
    expect(await new Response(answer.body).text()).toBe('abcd');
  });

  it('fails at once, not never, when the Node stream was destroyed before it was asked for', async () => {
    const readable = new Readable({ read() {} });
    readable.on('error', () => {});
    readable.destroy(new Error('reset before the read'));
    await new Promise((resolve) => setImmediate(resolve));
    const answer = response(readable);
    await expect(new Response(answer.body).text()).rejects.toThrow('reset before the read');
  });
});
