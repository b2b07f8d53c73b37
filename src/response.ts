import { constants } from 'node:buffer';
import { channel } from 'node:diagnostics_channel';
import { STATUS_CODES } from 'node:http';
import { SluiceError } from './errors.js';
import { parseJson, type RequestMeta, toSluiceError } from './normalize.js';

/** Where a response's bytes come from: undici's body, a fetch Response, or bytes in memory. */
export interface BodySource {
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
  /** A web stream, built only when asked. */
  readonly body: ReadableStream<Uint8Array> | null;
  /** Reads and drops the rest so the connection can return to the pool. */
  dump(): Promise<unknown>;
}

export type RawHeaders = Record<string, string | string[] | undefined>;

export interface HttpResponseInit {
  status: number;
  statusText?: string;
  headers: Headers | RawHeaders;
  url: string;
  body: BodySource | null;
  /** The request this answers; used in error messages. */
  request: RequestMeta;
  /** Aborting this signal is what cancels the body read; its reason becomes the error. */
  signal?: AbortLike | undefined;
  /**
   * `body` is a Node stream whose chunks nobody else holds or writes to again (undici's from a dispatcher
   * the undici transport made: each one a view into a socket read). A chunk that is all of its buffer then
   * goes into `response.body` as it is, the web stream taking its buffer over, instead of as a copy. Not
   * when anything subscribes to undici's `undici:request:bodyChunkReceived` channel (which is given the
   * same chunks) as the response is made, nor while a chunk is handed out.
   */
  freshChunks?: boolean;
  /** Stopped once the body has been read, discarded or failed: the attempt's clock. */
  attempt?: { stop(): void } | undefined;
}

/** What error mapping needs of a signal: an `AbortSignal`, or the transport's attempt clock. */
export interface AbortLike {
  readonly aborted: boolean;
  readonly reason: unknown;
}

const DECODER = new TextDecoder();
const ENCODER = new TextEncoder();

const EMPTY = { text: async () => '', arrayBuffer: async () => new ArrayBuffer(0), body: null, dump: async () => {} };

/** A body held in memory, e.g. a synthetic or already-buffered response. */
export function bytesSource(bytes: Uint8Array | string): BodySource {
  return new BytesSource(typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes, false);
}

const NO_BYTES = new Uint8Array(0);

/**
 * One object per buffered response, its methods on the prototype (no closures per response). `once`:
 * the bytes are let go as soon as they are read (a response's own buffer, which HttpResponse lets be
 * read once), so a large body is not kept alive by the response object after it was decoded.
 */
class BytesSource implements BodySource {
  #data: Uint8Array;
  readonly #once: boolean;
  constructor(data: Uint8Array, once: boolean) {
    this.#data = data;
    this.#once = once;
  }
  #take(): Uint8Array {
    const data = this.#data;
    if (this.#once) this.#data = NO_BYTES;
    return data;
  }
  async text(): Promise<string> {
    return this.decode();
  }
  decode(): string {
    return DECODER.decode(this.#take());
  }
  // A copy of exactly these bytes: `data` may be a view into a larger (pooled) buffer.
  async arrayBuffer(): Promise<ArrayBuffer> {
    const data = this.#take();
    return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  }
  get body(): ReadableStream<Uint8Array> {
    return new Blob([this.#take() as Uint8Array<ArrayBuffer>]).stream();
  }
  async dump(): Promise<void> {
    if (this.#once) this.#data = NO_BYTES;
  }
}

/**
 * Smallest declared body that the attempt reads as text when the caller reads text (see TextSource).
 * Measured on Node 20 (BENCHMARKS.md, fifth round): from 256 KiB, undici's own `text()` costs less CPU
 * than reading the chunks and decoding them later (1 MB: 0.86x -> 0.96x undici's throughput); below
 * it, it costs more (64 KB: about 15% more CPU).
 */
const TEXT_READ_FROM = 256 * 1024;
/** A body of more bytes than this could decode to a string longer than V8 allows. */
const { MAX_STRING_LENGTH } = constants;

/**
 * A body read inside the attempt for a caller that reads text (`CallOptions.textBody`, set only when
 * every layer and the transport are Sluice's own, so nothing else reads the response): held as the
 * string `text()` gives, decoded by the body itself as it ended, instead of as bytes decoded later.
 * Let go once read. Bytes asked of it are its UTF-8.
 */
class TextSource implements BodySource {
  #text: string;
  constructor(text: string) {
    this.#text = text;
  }
  async text(): Promise<string> {
    return this.decode();
  }
  decode(): string {
    const text = this.#text;
    this.#text = '';
    return text;
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = ENCODER.encode(this.decode());
    return bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
  }
  get body(): ReadableStream<Uint8Array> {
    return new Blob([this.decode()]).stream();
  }
  async dump(): Promise<void> {
    this.#text = '';
  }
}

interface NodeReadable {
  readonly destroyed?: boolean;
  readonly errored?: Error | null;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  destroy(error?: Error): unknown;
  readonly readableEnded?: boolean;
}

/** A Node stream that can also be paused: one that can be handed out as a web stream with backpressure. */
interface PausableReadable extends NodeReadable {
  pause(): unknown;
  resume(): unknown;
}

function isNodeReadable(source: BodySource): source is BodySource & NodeReadable {
  const candidate = source as Partial<NodeReadable>;
  return typeof candidate.on === 'function' && typeof candidate.destroy === 'function';
}

function isPausable(source: BodySource): source is BodySource & PausableReadable {
  const candidate = source as Partial<PausableReadable>;
  return isNodeReadable(source) && typeof candidate.pause === 'function' && typeof candidate.resume === 'function';
}

/**
 * A Node stream (undici's body) as a web byte stream, for `response.body` and `responseType: 'stream'`,
 * lighter than undici's own web view. A chunk handed out never shows more than itself through its
 * `.buffer`: undici's chunks are views into the socket's read, whose memory may also hold the response's
 * head (its Set-Cookie among others) and the chunks around it. Such a chunk is copied; with `fresh`
 * chunks (undici's), one that is its whole buffer (most of a large body) is handed over as it is, the
 * byte stream taking the buffer over. At most 1 MiB is queued before the Node stream is paused.
 */
function webStreamOf(readable: PausableReadable, fresh: boolean): ReadableStream<Uint8Array> {
  let open = true;
  return new ReadableStream(
    {
      type: 'bytes',
      start(controller) {
        const fail = (error: unknown) => {
          if (!open) return;
          open = false;
          controller.error(error);
        };
        // Destroyed before it was asked for (the caller's abort after the headers): its events are past.
        if (readable.destroyed) {
          fail(readable.errored ?? new Error('the response body was closed before it was read'));
          return;
        }
        readable.on('data', (chunk: unknown) => {
          if (!open) return;
          const bytes = bytesOf(chunk);
          if (bytes === undefined) {
            // Thrown from here, it would escape the stream's emit and leave the body silently short.
            fail(new TypeError('a response body chunk must be bytes or a string'));
            readable.destroy();
            return;
          }
          // A subscriber seen once means copies for the rest of this body.
          if (fresh && bodyChunks.hasSubscribers) fresh = false;
          handOver(controller, bytes, fresh);
          if ((controller.desiredSize ?? 0) <= 0) readable.pause();
        });
        readable.on('end', () => {
          if (!open) return;
          open = false;
          controller.close();
        });
        readable.on('error', fail);
        readable.on('close', () => fail(readable.errored ?? new Error('the response body ended early')));
      },
      pull() {
        readable.resume();
      },
      cancel() {
        open = false;
        readable.destroy();
      },
    },
    { highWaterMark: 16 * 64 * 1024 },
  );
}

/**
 * Queues `chunk` on a byte stream without exposing anything beside it: a copy, or, when it is `fresh`
 * and all of its buffer, the chunk as it is (the stream takes its buffer over). A buffer that cannot be
 * taken over (WebAssembly memory, a shared one) is copied too. An empty chunk is nothing to queue.
 */
function handOver(controller: ReadableByteStreamController, chunk: Uint8Array, fresh: boolean): void {
  if (chunk.byteLength === 0) return;
  if (fresh && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength) {
    try {
      controller.enqueue(chunk);
      return;
    } catch {
      // Not transferable: copied below.
    }
  }
  controller.enqueue(new Uint8Array(chunk));
}

const bodyChunks = channel('undici:request:bodyChunkReceived');

/** A Node stream's chunk as bytes: a string (a stream with an encoding set) as UTF-8; not bytes at all, `undefined`. */
function bytesOf(chunk: unknown): Uint8Array | undefined {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return ENCODER.encode(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return undefined;
}

const readText = (source: BodySource): Promise<string> => source.text();

/** A web stream's bytes, or `undefined` (and the stream cancelled) once past `maxBytes`. */
async function readUpTo(source: BodySource, maxBytes: number): Promise<Uint8Array | undefined> {
  const reader = source.body?.getReader();
  if (!reader) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** Every chunk of a Node stream, or `undefined` (and the stream destroyed) once past `maxBytes`. */
function collectUpTo(readable: NodeReadable, maxBytes: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    // Destroyed before the read began (the attempt's clock or the caller's abort fired after the
    // headers): its events are past, so say so now; the caller maps it through the signal's reason.
    if (readable.destroyed) {
      reject(readable.errored ?? new Error('the response body was closed before it was read'));
      return;
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    let over = false;
    readable.on('data', (chunk) => {
      if (over) return;
      size += chunk.byteLength;
      if (size > maxBytes) {
        over = true;
        readable.destroy();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    // `on`, not `once`: each fires once in a stream's life, and `once` wraps every listener.
    readable.on('end', () => resolve(Buffer.concat(chunks)));
    readable.on('error', reject);
    // Destroyed before its end (an abort, a reset): the 'error' above says why; without one, it is cut.
    readable.on('close', () => {
      if (!over && !readable.readableEnded) reject(new Error('the response body ended early'));
    });
  });
}

function tooLarge(request: RequestMeta, maxBytes: number): SluiceError {
  return new SluiceError(`response body is larger than ${maxBytes} bytes (maxResponseBytes)`, {
    code: 'ERR_RESPONSE_TOO_LARGE',
    method: request.method,
    url: request.url,
  });
}

let bufferedOf: (response: HttpResponse, maxBytes: number, asText: boolean) => Promise<HttpResponse>;

/**
 * The attempt's body read: `response.buffer(maxBytes)`, resolving to the response (see `#buffered`).
 * `asText`: the caller reads the body as text (`CallOptions.textBody`).
 */
export function buffered(response: HttpResponse, maxBytes: number, asText = false): Promise<HttpResponse> {
  // A response-shaped object (or a subclass) of a transport of yours: its own public method.
  if (Object.getPrototypeOf(response) !== HttpResponse.prototype) {
    const shaped = response as HttpResponse;
    return shaped.buffer(maxBytes).then(() => shaped);
  }
  return bufferedOf(response, maxBytes, asText);
}

/**
 * Sluice's light, fetch-shaped response. Headers are turned into a `Headers` and the body into a web
 * stream only when asked. Read the body once, or call `discard()` to release the connection.
 */
export class HttpResponse {
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly request: RequestMeta;
  #raw: Headers | RawHeaders;
  #headers: Headers | undefined;
  #source: BodySource;
  #signal: AbortLike | undefined;
  #used = false;
  #settled: (() => void)[] | undefined;
  readonly #attempt: { stop(): void } | undefined;
  #done = false;
  /** `body`, once asked for: the same stream every time. */
  #stream: ReadableStream<Uint8Array> | null | undefined = undefined;
  readonly #fresh: boolean;

  constructor(init: HttpResponseInit) {
    this.status = init.status;
    this.statusText = init.statusText ?? STATUS_CODES[init.status] ?? '';
    this.url = init.url;
    this.request = init.request;
    this.#raw = init.headers;
    this.#source = init.body ?? EMPTY;
    this.#signal = init.signal;
    // Own only: a polluted Object.prototype must not make a transport's buffers ours to take. Subscribers
    // of undici's body channel are given each chunk as it arrives, and may keep it: one there when the
    // response begins (or when a chunk is handed out) means copies.
    this.#fresh = init.freshChunks === true && Object.hasOwn(init, 'freshChunks') && !bodyChunks.hasSubscribers;
    // Own only, as `freshChunks`.
    this.#attempt = Object.hasOwn(init, 'attempt') ? init.attempt : undefined;
    if (init.body === null) {
      this.#done = true;
      this.#attempt?.stop();
    }
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get headers(): Headers {
    if (this.#headers) return this.#headers;
    const raw = this.#raw;
    let headers: Headers;
    if (raw instanceof Headers) headers = raw;
    else {
      headers = new Headers();
      for (const name of Object.keys(raw)) {
        const value = raw[name];
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const item of value) headers.append(name, item);
        else headers.append(name, value);
      }
    }
    this.#headers = headers;
    return headers;
  }

  /** One header without building a `Headers`; `name` must be lower case. */
  header(name: string): string | null {
    const raw = this.#raw;
    if (raw instanceof Headers) return raw.get(name);
    // Own properties only: a polluted Object.prototype must not answer for a header the server never sent.
    const value = Object.hasOwn(raw, name) ? raw[name] : undefined;
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  /** The body as a web stream; taking it counts as using the body. */
  get body(): ReadableStream<Uint8Array> | null {
    this.#used = true;
    if (this.#stream === undefined) {
      const source = this.#source;
      this.#stream = isPausable(source) ? webStreamOf(source, this.#fresh) : source.body;
    }
    return this.#stream;
  }

  /** Runs `fn` once the body has been read, discarded or failed (at once if that already happened). */
  onSettled(fn: () => void): void {
    if (this.#done) fn();
    else if (this.#settled) this.#settled.push(fn);
    else this.#settled = [fn];
  }

  #settle(): void {
    if (this.#done) return;
    this.#done = true;
    this.#attempt?.stop();
    const settled = this.#settled;
    this.#settled = undefined;
    if (settled) for (const fn of settled) fn();
  }

  /** `#read` for `bytesUpTo`, without a closure per read (every response is read through here). */
  async #collect(source: BodySource, maxBytes: number, declared: number): Promise<Uint8Array | undefined> {
    this.#used = true;
    try {
      // A Node stream (undici's body) is read as it is: its web-stream view costs more than the rest
      // of a small request.
      if (isNodeReadable(source)) return await collectUpTo(source, maxBytes);
      if (declared > 0) {
        // A source's bytes may outnumber its declared length (text held decoded, see TextSource).
        const bytes = new Uint8Array(await source.arrayBuffer());
        return bytes.byteLength > maxBytes ? undefined : bytes;
      }
      return await readUpTo(source, maxBytes);
    } catch (error) {
      throw toSluiceError(error, this.request, this.#signal);
    } finally {
      this.#settle();
    }
  }

  async #read<T>(read: (source: BodySource) => Promise<T>): Promise<T> {
    if (this.#used) throw new TypeError('Body has already been used');
    this.#used = true;
    try {
      return await read(this.#source);
    } catch (error) {
      throw toSluiceError(error, this.request, this.#signal);
    } finally {
      this.#settle();
    }
  }

  text(): Promise<string> {
    // Bytes already in memory (buffered inside the attempt, as nearly every response is): decoded at
    // once, with no async step and nothing left to fail.
    const source = this.#source;
    if ((source instanceof BytesSource || source instanceof TextSource) && !this.#used) {
      this.#used = true;
      const text = source.decode();
      try {
        this.#settle();
      } catch (error) {
        return Promise.reject(error);
      }
      return Promise.resolve(text);
    }
    return this.#read(readText);
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#read((source) => source.arrayBuffer());
  }

  /**
   * The body's bytes if it is at most `maxBytes` long, else `undefined`: the read stops at the cap and
   * the connection is dropped, so a longer (or endless) body is never held in memory.
   */
  async bytesUpTo(maxBytes: number): Promise<Uint8Array | undefined> {
    const declared = this.#declaredLength();
    if (declared > maxBytes) {
      await this.discard();
      return undefined;
    }
    if (this.#used) throw new TypeError('Body has already been used');
    return this.#collect(this.#source, maxBytes, declared);
  }

  /** The body's length as its head declares it; 0 when unknown, or compressed (count while reading then). */
  #declaredLength(): number {
    // A compressed body's Content-Length says nothing of what it inflates to.
    const encoded = (this.header('content-encoding') ?? 'identity').toLowerCase() !== 'identity';
    return encoded ? 0 : Number(this.header('content-length') ?? 0);
  }

  /** The body as text if it is at most `maxBytes` long, else `undefined` (see `bytesUpTo`). */
  async textUpTo(maxBytes: number): Promise<string | undefined> {
    const bytes = await this.bytesUpTo(maxBytes);
    return bytes === undefined ? undefined : DECODER.decode(bytes);
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.arrayBuffer());
  }

  async blob(): Promise<Blob> {
    return new Blob([await this.arrayBuffer()], { type: this.header('content-type') ?? '' });
  }

  /** Parsed JSON; an empty body is `undefined`, invalid JSON a `ParseError`. */
  async json<T = unknown>(): Promise<T> {
    return parseJson(await this.text(), this.request) as T;
  }

  /**
   * Reads the whole body into memory now, while the attempt's clock still runs: a reset or a stall
   * fails here, typed, and later reads cannot fail. A partial body is never kept.
   */
  async buffer(maxBytes = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.#used || this.#done) return;
    const bytes =
      maxBytes === Number.POSITIVE_INFINITY
        ? new Uint8Array(await this.#read((source) => source.arrayBuffer()))
        : await this.bytesUpTo(maxBytes);
    if (bytes === undefined) throw tooLarge(this.request, maxBytes);
    this.#source = new BytesSource(bytes, true);
    this.#used = false;
  }

  /**
   * `buffer(maxBytes)` for the attempt, resolving to this response. A Node body not yet touched, within
   * its cap as far as its length says (nearly every answer), is read with one promise and one step
   * instead of three async functions; anything else goes through `buffer()` itself.
   */
  #buffered(maxBytes: number, asText: boolean): Promise<HttpResponse> {
    const source = this.#source;
    if (this.#used || this.#done || maxBytes === Number.POSITIVE_INFINITY || !isNodeReadable(source)) {
      return this.buffer(maxBytes).then(() => this);
    }
    const declared = this.#declaredLength();
    if (declared > maxBytes) return this.buffer(maxBytes).then(() => this);
    this.#used = true;
    // For a caller that reads text, a large body of known length from undici's own connection (which
    // never delivers more than that length) is decoded by undici's body itself as it ends: see TextSource.
    const reading =
      asText && declared >= TEXT_READ_FROM && declared <= MAX_STRING_LENGTH && this.#fresh
        ? source.text()
        : collectUpTo(source, maxBytes);
    return reading.then(
      (body) => {
        this.#settle();
        if (body === undefined) throw tooLarge(this.request, maxBytes);
        this.#source = typeof body === 'string' ? new TextSource(body) : new BytesSource(body, true);
        this.#used = false;
        return this;
      },
      (error: unknown) => {
        const failure = toSluiceError(error, this.request, this.#signal);
        this.#settle();
        throw failure;
      },
    );
  }

  static {
    bufferedOf = (response, maxBytes, asText) => response.#buffered(maxBytes, asText);
  }

  /** Drops the body so the connection returns to the pool. Never throws. */
  async discard(): Promise<void> {
    if (this.#used || this.#done) return;
    this.#used = true;
    try {
      await this.#source.dump();
    } catch {
      // The connection is gone either way; nothing to release.
    } finally {
      this.#settle();
    }
  }
}

/**
 * A `Retry-After` value (RFC 9110 10.2.3: delay-seconds or an HTTP date) as a wait in ms from `now`,
 * or `undefined` when it is malformed (a negative number, a fraction of a date, junk): a malformed
 * field is ignored, never read as "retry now".
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.length > 64) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  // IMF-fixdate, RFC 850 and asctime all start with a day name.
  if (!/^[A-Za-z]{3,9},? /.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A delay in whole seconds (`RateLimit-Reset`, `X-RateLimit-Reset`) as ms; anything else is `undefined`. */
export function parseDelaySeconds(value: string | null): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  return /^\d{1,12}$/.test(trimmed) ? Number(trimmed) * 1000 : undefined;
}
