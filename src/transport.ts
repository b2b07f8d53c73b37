import { Readable } from 'node:stream';
import { Agent, type Dispatcher, ProxyAgent } from 'undici';
import { wireBody } from './body.js';
import { Answer, builtIn, SETTLED_BY_CALLER } from './compose.js';
import { AbortError, ConfigError, type SluiceError, TimeoutError } from './errors.js';
import { toSluiceError } from './normalize.js';
import { own } from './own.js';
import { type AttemptTimeout, type HeaderFields, type HttpRequest, remainingMs, wireHeaders } from './request.js';
import { type BodySource, HttpResponse } from './response.js';
import { clampDelay } from './timers.js';
import type { Transport } from './types.js';

export interface TlsOptions {
  /** Extra trusted CA certificates (PEM). */
  ca?: string | Buffer | (string | Buffer)[];
  /** Client certificate and key (PEM), for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** `false` turns off certificate verification: for local development only. @default true */
  rejectUnauthorized?: boolean;
}

export interface UndiciTransportOptions {
  /** A whole dispatcher of your own; the transport will not close it. */
  dispatcher?: Dispatcher;
  /** Route every request through this HTTP(S) proxy, e.g. `http://proxy.local:3128`. */
  proxy?: string;
  tls?: TlsOptions;
  /** Connections kept per origin. @default 128 */
  connections?: number;
  /** How long an idle keep-alive socket is kept, in ms. @default 4000 */
  keepAliveTimeout?: number;
}

/**
 * The default transport: `undici.request` on an Agent it owns, with keep-alive pooling.
 * Redirects are never followed here: the chain follows them, so every hop is checked.
 */
export function undiciTransport(options: UndiciTransportOptions = {}): Transport {
  const { dispatcher: given, proxy, tls, connections = 128, keepAliveTimeout = 4000 } = own(options);
  if (!Number.isInteger(connections) || connections < 1) {
    throw new ConfigError(`connections must be a positive integer, got ${connections}`);
  }
  if (given && (proxy || tls)) throw new ConfigError('pass either dispatcher, or proxy/tls options, not both');
  const connect = tls ? { ...tls } : undefined;
  let dispatcher: Dispatcher;
  if (given) dispatcher = given;
  else if (proxy) {
    try {
      new URL(proxy);
    } catch {
      throw new ConfigError('proxy must be an absolute URL such as http://proxy.local:3128');
    }
    dispatcher = new ProxyAgent({
      uri: proxy,
      connections,
      keepAliveTimeout,
      ...(connect ? { requestTls: connect } : {}),
    });
  } else {
    dispatcher = new Agent({ connections, keepAliveTimeout, ...(connect ? { connect } : {}) });
  }

  // Headers as undici's flat array only on the Agent made here: a ProxyAgent (or a dispatcher of your
  // own) reads headers its own way, and gets them as a Headers, as it always did.
  const light = !given && !proxy;
  // Body chunks are ours to hand over only from a dispatcher made here: one of yours may keep them or
  // give the same buffer to several requests (a cache, deduplication, a mock's persisted reply).
  const fresh = !given;

  // Not async: while the answer is awaited, a call holds undici's promise, not a suspended function.
  function send(request: HttpRequest): Promise<HttpResponse> {
    let wire: ReturnType<typeof wireBody>;
    try {
      wire = wireBody(request);
    } catch (error) {
      return Promise.reject(error);
    }
    const { body } = wire;
    if (body instanceof FormData || body instanceof Blob) return encodeThenSend(request, body, wire.contentType);
    return dispatch(request, body, wire.contentType);
  }

  // The undici package cannot read Node's built-in FormData (another undici copy): encode it here.
  async function encodeThenSend(
    request: HttpRequest,
    body: FormData | Blob,
    contentType: string | undefined,
  ): Promise<HttpResponse> {
    const encoded = new Response(body);
    const type = encoded.headers.get('content-type') ?? contentType;
    return dispatch(request, new Uint8Array(await encoded.arrayBuffer()), type);
  }

  function dispatch(request: HttpRequest, given: unknown, contentType: string | undefined): Promise<HttpResponse> {
    let body = given;
    let headers: Headers | HeaderFields;
    let clock: AttemptClock | undefined;
    try {
      headers = light ? wireHeaders(request) : request.headers;
      if (contentType && request.header('content-type') === null) {
        if (headers instanceof Headers) {
          headers = new Headers(headers);
          headers.set('content-type', contentType);
        } else headers = [...headers, 'content-type', contentType];
      }
      if (body instanceof ReadableStream) body = Readable.fromWeb(body as import('node:stream/web').ReadableStream);
      clock = request.timeout ? AttemptClock.start(request, request.timeout) : undefined;
    } catch (error) {
      return Promise.reject(error);
    }
    const exchange = new Exchange(request, clock, request.options.streamBody === true, fresh);
    try {
      const [origin, path] = splitURL(request.url);
      const options = new DispatchRequest(
        origin,
        path,
        request.method,
        headers,
        body as DispatchRequest['body'],
        clock ?? request.signal ?? null,
        exchange,
      );
      // A streamed body outlives the attempt; undici's idle timer guards it instead.
      if (exchange.stream && request.timeout) options.bodyTimeout = clampDelay(request.timeout.limit);
      const returned: unknown = dispatcher.request(options as unknown as Dispatcher.RequestOptions<Exchange>, answered);
      // A dispatcher of yours whose request() answers with a promise and ignores the callback.
      if (isThenable(returned))
        returned.then(
          (data) => deliver(exchange, null, data),
          (error: Error) => exchange.failed(error),
        );
    } catch (error) {
      exchange.failed(error);
    }
    return exchange.promise;
  }

  return {
    send: builtIn(send),
    close: async () => {
      if (!given) await dispatcher.close();
    },
  };
}

/**
 * One attempt waiting for undici's answer: the answer the layers above add their steps to (see
 * `after`). undici hands it back as `opaque` to one shared callback (`answered`), so while the answer
 * is awaited an attempt holds this object and its promise, not undici's promise and closures of ours.
 */
class Exchange extends Answer {
  readonly request: HttpRequest;
  readonly clock: AttemptClock | undefined;
  readonly stream: boolean;
  readonly fresh: boolean;
  constructor(request: HttpRequest, clock: AttemptClock | undefined, stream: boolean, fresh: boolean) {
    super(SETTLED_BY_CALLER);
    this.request = request;
    this.clock = clock;
    this.stream = stream;
    this.fresh = fresh;
  }

  /** The response head arrived. */
  succeeded(response: Dispatcher.ResponseData<Exchange>): void {
    const { request, clock } = this;
    const result = new HttpResponse({
      status: response.statusCode,
      headers: response.headers,
      url: request.url,
      body: response.body as unknown as BodySource,
      request,
      signal: clock ?? request.signal,
      freshChunks: this.fresh,
      // A streamed body outlives the attempt: its clock stops when the stream closes.
      attempt: this.stream ? undefined : clock,
    });
    if (clock && this.stream) {
      clock.disarm();
      response.body.once('close', () => clock.stop());
    }
    this.settle(result, false);
  }

  /** The attempt failed before a response head (or sending it threw). */
  failed(error: unknown): void {
    const { request, clock } = this;
    clock?.stop();
    this.settle(toSluiceError(error, request, clock ?? request.signal), true);
  }
}

function isThenable(value: unknown): value is PromiseLike<Dispatcher.ResponseData<Exchange>> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

/**
 * undici's callback for every attempt (one function, the attempt passed back as `opaque`). It runs
 * inside undici's parser: nothing may be thrown back into it.
 */
function answered(error: Error | null, data: Dispatcher.ResponseData<Exchange>): void {
  deliver(data.opaque, error, data);
}

function deliver(exchange: Exchange, error: Error | null, data: Dispatcher.ResponseData<Exchange>): void {
  if (error) {
    exchange.failed(error);
    return;
  }
  try {
    exchange.succeeded(data);
  } catch (cause) {
    // The response was not handed over: its body is dropped so the connection is not held.
    data.body?.destroy();
    exchange.failed(cause);
  }
}

/**
 * The options of one `dispatcher.request()`. undici reads many optional fields (query, upgrade,
 * reset...) and a polluted Object.prototype must supply none of them: the class's prototype has no
 * prototype of its own. A class rather than an `Object.create(null)` object, which V8 keeps as a
 * dictionary: one fixed shape, every field in the object.
 */
class DispatchRequest {
  readonly origin: string;
  readonly path: string;
  readonly method: string;
  readonly headers: Headers | HeaderFields;
  readonly body: NonNullable<Dispatcher.DispatchOptions['body']> | null | undefined;
  readonly signal: AttemptClock | AbortSignal | null;
  /** Handed back to `answered` by undici. */
  readonly opaque: Exchange;
  bodyTimeout: number | undefined = undefined;
  constructor(
    origin: string,
    path: string,
    method: string,
    headers: Headers | HeaderFields,
    body: DispatchRequest['body'],
    signal: DispatchRequest['signal'],
    opaque: Exchange,
  ) {
    this.origin = origin;
    this.path = path;
    this.method = method;
    this.headers = headers;
    this.body = body;
    this.signal = signal;
    this.opaque = opaque;
  }
}
Object.setPrototypeOf(DispatchRequest.prototype, null);

/** The origin of the last URL `splitURL` took apart the simple way: the next one on it reuses the string. */
let lastOrigin = '';

/** Origin and path (with query) of an absolute http(s) URL, without a URL object in the common case. */
function splitURL(url: string): [string, string] {
  // Same origin as the last one (nearly every request of a client): no new origin string for undici to
  // hold while the request waits. The origin was checked as below: no '@', '?' or '#' in it.
  const known = lastOrigin.length;
  if (known > 0 && url.startsWith(lastOrigin) && url.charCodeAt(known) === 47 && !url.includes('#')) {
    return [lastOrigin, url.slice(known)];
  }
  const start = url.indexOf('//');
  const slash = start === -1 ? -1 : url.indexOf('/', start + 2);
  const query = url.indexOf('?');
  const simple =
    slash !== -1 && (query === -1 || query > slash) && !url.includes('#') && !url.slice(start + 2, slash).includes('@');
  if (simple) {
    lastOrigin = url.slice(0, slash);
    return [lastOrigin, url.slice(slash)];
  }
  const parsed = new URL(url);
  return [parsed.origin, `${parsed.pathname}${parsed.search}`];
}

/** The timer callback of every clock: one function, the clock passed as its argument (no closure per attempt). */
function expire(clock: AttemptClock): void {
  clock.fire();
}

/**
 * One attempt's wall-clock limit, for undici: shaped as the EventEmitter-style signal `undici.request`
 * accepts (one listener, no EventTarget), so an attempt costs one timer and this object, not an
 * AbortController and its events. It fires a `TimeoutError` when the attempt's end passes, whatever the
 * attempt is doing then (connecting, waiting for headers, reading the body), or an `AbortError` when
 * the caller aborts.
 */
export class AttemptClock {
  aborted = false;
  reason: unknown = undefined;
  #listener: (() => void) | undefined = undefined;
  #timer: NodeJS.Timeout | undefined = undefined;
  #onAbort: (() => void) | undefined = undefined;
  readonly #request: HttpRequest;
  readonly #plan: AttemptTimeout;

  private constructor(request: HttpRequest, plan: AttemptTimeout) {
    this.#request = request;
    this.#plan = plan;
  }

  static start(request: HttpRequest, plan: AttemptTimeout): AttemptClock {
    const clock = new AttemptClock(request, plan);
    const ms = remainingMs(plan);
    const parent = request.signal;
    if (ms <= 0) clock.fire();
    else if (parent?.aborted) clock.cancel();
    else {
      clock.#timer = setTimeout(expire, clampDelay(Math.ceil(ms)), clock);
      clock.#timer.unref();
      if (parent) {
        // Built only when the caller passed a signal: most calls have none.
        clock.#onAbort = () => clock.cancel();
        parent.addEventListener('abort', clock.#onAbort, { once: true });
      }
    }
    return clock;
  }

  // The listener interface undici uses for a signal without addEventListener.
  on(_event: 'abort', listener: () => void): this {
    this.#listener = listener;
    return this;
  }
  once(event: 'abort', listener: () => void): this {
    return this.on(event, listener);
  }
  removeListener(_event: 'abort', listener: () => void): this {
    if (this.#listener === listener) this.#listener = undefined;
    return this;
  }

  /** The time limit no longer applies (the body is streamed out); the caller's abort still does. */
  disarm(): void {
    clearTimeout(this.#timer);
  }

  /** The attempt is over: no timer, no listener left on the caller's signal. */
  stop(): void {
    clearTimeout(this.#timer);
    if (this.#onAbort) this.#request.signal?.removeEventListener('abort', this.#onAbort);
  }

  /** The attempt's end has passed. */
  fire(): void {
    const { method, url } = this.#request;
    this.#abort(new TimeoutError(this.#plan.kind, this.#plan.limit, { method, url }));
  }

  /** The caller aborted. */
  cancel(): void {
    const { method, url, signal } = this.#request;
    this.#abort(new AbortError({ method, url, cause: signal?.reason }));
  }

  #abort(reason: SluiceError): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.stop();
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
  }
}

/**
 * For transports that take an `AbortSignal` (fetch, your own): a signal that fires with a
 * `TimeoutError` when the attempt's end passes, or with `AbortError` when the caller aborts.
 * `disarm()` drops the time limit only (a streamed body); `done()` ends both once the body has been
 * read or dropped.
 */
export function attemptSignal(request: HttpRequest): {
  signal: AbortSignal | undefined;
  done: () => void;
  disarm: () => void;
} {
  const plan = request.timeout;
  const parent = request.signal;
  if (!plan) return { signal: parent, done: () => {}, disarm: () => {} };
  const controller = new AbortController();
  const expire = () =>
    controller.abort(new TimeoutError(plan.kind, plan.limit, { method: request.method, url: request.url }));
  const ms = remainingMs(plan);
  const timer = ms > 0 ? setTimeout(expire, clampDelay(Math.ceil(ms))) : undefined;
  timer?.unref();
  if (ms <= 0) expire();
  const onAbort = () =>
    controller.abort(new AbortError({ method: request.method, url: request.url, cause: parent?.reason }));
  if (parent?.aborted) onAbort();
  else parent?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onAbort);
    },
    disarm: () => clearTimeout(timer),
  };
}

export interface FetchTransportOptions {
  /** Any fetch implementation. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

/** `stream` as it is, but `end` runs once it has been read to the end, failed or been cancelled. */
function untilEnd(stream: ReadableStream<Uint8Array>, end: () => void): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          end();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        end();
        controller.error(error);
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  });
}

/** A fetch Response's body, read on demand. */
class FetchSource implements BodySource {
  readonly #response: Response;
  readonly #streamed: (() => void) | undefined;
  constructor(response: Response, streamed: (() => void) | undefined) {
    this.#response = response;
    this.#streamed = streamed;
  }
  text(): Promise<string> {
    return this.#response.text();
  }
  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#response.arrayBuffer();
  }
  get body(): ReadableStream<Uint8Array> | null {
    // A streamed body never settles through the response: its end releases the caller's signal.
    const body = this.#response.body;
    return this.#streamed && body ? untilEnd(body, this.#streamed) : body;
  }
  async dump(): Promise<void> {
    await this.#response.body?.cancel();
  }
}

/** The portable transport: any fetch (the global one, or yours), with `redirect: 'manual'`. */
export function fetchTransport(given: FetchTransportOptions = {}): Transport {
  const options = own(given);
  const fetchFn = options.fetch ?? globalThis.fetch;
  if (typeof fetchFn !== 'function') throw new ConfigError('fetch must be a function');

  async function send(request: HttpRequest): Promise<HttpResponse> {
    const wire = wireBody(request);
    let headers: Headers = request.headers;
    if (wire.contentType && !headers.has('content-type')) {
      headers = new Headers(headers);
      headers.set('content-type', wire.contentType);
    }
    let body = wire.body;
    if (body instanceof Readable) body = Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>;
    const { signal, done, disarm } = attemptSignal(request);
    try {
      const init: RequestInit & { duplex?: 'half' } = {
        method: request.method,
        headers,
        body: body as NonNullable<RequestInit['body']> | null,
        redirect: 'manual',
        signal: signal ?? null,
      };
      if (body instanceof ReadableStream) init.duplex = 'half';
      const response = await fetchFn(request.url, init);
      const result = new HttpResponse({
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
        url: request.url,
        body: response.body ? new FetchSource(response, request.options.streamBody ? done : undefined) : null,
        request,
        signal,
      });
      if (request.options.streamBody) disarm();
      result.onSettled(done);
      return result;
    } catch (error) {
      done();
      throw toSluiceError(error, request, signal);
    }
  }

  return { send: builtIn(send), close: async () => {} };
}
