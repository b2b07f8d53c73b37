/**
 * A large body of a call that reads text (JSON, `responseType: 'text'`, or none) is read inside the
 * attempt by undici's own `text()` and held as that text (`CallOptions.textBody`, `TextSource`), when
 * every layer and the transport are Sluice's own. These show when that route is taken, and pin what
 * must not change with it: the parsed data, the exact bytes for a middleware of yours or a call that
 * asks for bytes, and faults mid-body (a reset is retried, a stall times out).
 */
import type { Socket } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createClient,
  HttpResponse,
  type Middleware,
  NetworkError,
  type SluiceClient,
  type SluiceEvent,
  TimeoutError,
} from '../../src/index.js';
import { bytesSource } from '../../src/internals.js';
import { type RawServer, rawServer, serverPool } from '../helpers/server.js';
import { rejection } from '../helpers/wait.js';

const servers = serverPool();
const raws: RawServer[] = [];
const clients: SluiceClient[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(raws.splice(0).map((server) => server.close()));
  await servers.closeAll();
});

function client(options: Parameters<typeof createClient>[0]) {
  const events: SluiceEvent[] = [];
  const api = createClient({ onEvent: (event) => events.push(event), ...options });
  clients.push(api);
  return { api, events };
}

/** Over the 256 KiB from which the attempt reads text with undici's text(). */
const LARGE = 512 * 1024;

/** A JSON document of about `size` bytes with non-ASCII text in it (valid UTF-8, no byte order mark). */
function jsonOf(size: number): { value: { items: string[] }; bytes: Buffer } {
  const items: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const item = `naïve café ${i} — ünïcödé 🙂`;
    items.push(item);
    length += Buffer.byteLength(item) + 3;
  }
  const value = { items };
  return { value, bytes: Buffer.from(JSON.stringify(value)) };
}

/** Bytes that are not UTF-8 at all (every byte 0x80-0xff). */
function binaryOf(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = 0x80 + (i % 128);
  return bytes;
}

/** undici's body class, whose `text()` the attempt calls for a large body read as text. */
async function undiciBodyPrototype(url: string): Promise<{ text(): Promise<string> }> {
  const { body } = await request(url);
  await body.dump();
  return Object.getPrototypeOf(body);
}

describe('a large body of a call that reads text', () => {
  it("is read by undici's text() only when the call reads text, the body is large and the chain is all Sluice's", async () => {
    const { value, bytes } = jsonOf(LARGE);
    const small = Buffer.from(JSON.stringify({ small: 'x'.repeat(64 * 1024) }));
    const s = await servers.start((seen, response) => {
      const body = seen.url === '/small' ? small : bytes;
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      response.end(body);
    });
    const text = vi.spyOn(await undiciBodyPrototype(`${s.url}/small`), 'text');
    const plain = client({ baseURL: s.url }).api;
    expect(await plain.get('doc')).toEqual(value);
    expect(text).toHaveBeenCalledTimes(1);
    expect(await plain.get('doc', { responseType: 'text' })).toBe(bytes.toString('utf8'));
    expect(text).toHaveBeenCalledTimes(2);
    // A cap of the client's own keeps the route; a smaller body, or a call that asks for bytes, does not take it.
    expect(await client({ baseURL: s.url, maxResponseBytes: LARGE * 2 }).api.get('doc')).toEqual(value);
    expect(text).toHaveBeenCalledTimes(3);
    expect(await plain.get('small')).toEqual({ small: 'x'.repeat(64 * 1024) });
    expect(Buffer.from((await plain.get('doc', { responseType: 'arrayBuffer' })) as ArrayBuffer).equals(bytes)).toBe(
      true,
    );
    expect(text).toHaveBeenCalledTimes(3);
    // A middleware of yours anywhere in the chain may ask for bytes: the body is kept as bytes.
    const yours: Middleware = (request, next) => next(request);
    const mixed = client({ baseURL: s.url, middleware: (defaults) => [...defaults, yours] }).api;
    expect(await mixed.get('doc')).toEqual(value);
    expect(text).toHaveBeenCalledTimes(3);
  });

  it('a middleware of yours asking for the bytes gets the exact bytes sent, a byte order mark included', async () => {
    const { value, bytes: json } = jsonOf(LARGE);
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json]);
    const s = await servers.start((_, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length });
      response.end(bytes);
    });
    const read: Uint8Array[] = [];
    // On top of the built-in layers: it sees the response once its body was read inside the attempt.
    const bytesOnTop: Middleware = async (request, next) => {
      const response = await next(request);
      const body = await response.bytes();
      read.push(body);
      return new HttpResponse({
        status: response.status,
        headers: { 'content-type': 'application/json' },
        url: response.url,
        body: bytesSource(body),
        request,
      });
    };
    // Read as text, the mark is dropped on both routes, as any fetch-style text() drops it.
    const plain = client({ baseURL: s.url }).api;
    expect(await plain.get('doc')).toEqual(value);
    expect(await plain.get('doc', { responseType: 'text' })).toBe(json.toString('utf8'));

    const tapped = client({ baseURL: s.url, middleware: (defaults) => [bytesOnTop, ...defaults] }).api;
    expect(await tapped.get('doc')).toEqual(value);
    expect(read).toHaveLength(1);
    expect(Buffer.from(read[0]!).equals(bytes)).toBe(true);
  });

  it('a call that asks for bytes gets them as they came, even when they are not UTF-8', async () => {
    const binary = binaryOf(LARGE);
    const s = await servers.start((_, response) => {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': binary.length });
      response.end(binary);
    });
    const { api } = client({ baseURL: s.url });
    const buffer = (await api.get('blob', { responseType: 'arrayBuffer' })) as ArrayBuffer;
    expect(Buffer.from(buffer).equals(binary)).toBe(true);
    const blob = (await api.get('blob', { responseType: 'blob' })) as Blob;
    expect(Buffer.from(await blob.arrayBuffer()).equals(binary)).toBe(true);
    // Read as text, it is what any UTF-8 decoder makes of it.
    expect(await api.get('blob', { responseType: 'text' })).toBe(new TextDecoder().decode(binary));
  });

  /** Answers with a head declaring LARGE bytes, then `cut(socket, index)` decides what follows. */
  async function declaring(cut: (socket: Socket, index: number) => void): Promise<RawServer> {
    const server = await rawServer((socket, index) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${LARGE}\r\n\r\n`);
      cut(socket, index);
    });
    raws.push(server);
    return server;
  }

  it('a connection reset mid-body is retried for a GET, and the retried answer is read whole', async () => {
    const whole = Buffer.from(`{"n":"${'x'.repeat(LARGE - 8)}"}`);
    const server = await declaring((socket, index) => {
      if (index > 0) {
        socket.end(whole);
        return;
      }
      socket.write(whole.subarray(0, 64 * 1024));
      setTimeout(() => socket.destroy(), 20);
    });
    const { api, events } = client({ baseURL: server.url, retry: { random: () => 0 } });
    const data = (await api.get('doc')) as { n: string };
    expect(data.n).toHaveLength(LARGE - 8);
    expect(server.requests).toBe(2);
    expect(events.filter((event) => event.type === 'retry')).toHaveLength(1);
  });

  it('a body cut short is a retryable NetworkError when not retried', async () => {
    const server = await declaring((socket) => {
      socket.write(Buffer.alloc(64 * 1024, 0x20));
      setTimeout(() => socket.destroy(), 20);
    });
    const { api } = client({ baseURL: server.url });
    const error = await rejection(api.get('doc', { retry: false }));
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ retryable: true, attempts: 1 });
  });

  it("a body that stalls mid-way fails at the attempt's time limit, typed", async () => {
    const server = await declaring((socket) => {
      socket.write(Buffer.alloc(64 * 1024, 0x20));
    });
    const { api } = client({ baseURL: server.url, timeout: 200 });
    const started = performance.now();
    const error = await rejection(api.get('doc', { retry: false }));
    expect(error).toBeInstanceOf(TimeoutError);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});
