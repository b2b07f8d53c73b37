/**
 * `responseType: 'stream'` over the undici transport: the body is handed out as a web stream over
 * undici's Node stream, chunk by chunk, with backpressure, and every way it can end (read to the end,
 * cut by the server, cancelled by the reader) ends the stream and the connection.
 */
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
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

describe('HttpResponse.body over a Node stream', () => {
  const response = (readable: Readable) =>
    new HttpResponse({
      status: 200,
      headers: {},
      url: 'https://x.test/',
      body: readable as never,
      request: { method: 'GET', url: 'https://x.test/' },
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
