import { Readable } from 'node:stream';
import { Agent, type Dispatcher, ProxyAgent, request as undiciRequest } from 'undici';
import { wireBody } from './body.js';
import { AbortError, ConfigError, TimeoutError } from './errors.js';
import { toSluiceError } from './normalize.js';
import type { HttpRequest } from './request.js';
import { type BodySource, HttpResponse } from './response.js';
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

/** Attempt limits shorter than this get a precise JS timer instead of undici's once-a-second ticks. */
const PRECISE_BELOW_MS = 5000;

/**
 * The default transport: `undici.request` on an Agent it owns, with keep-alive pooling.
 * Redirects are never followed here: the chain follows them, so every hop is checked.
 */
export function undiciTransport(options: UndiciTransportOptions = {}): Transport {
  const { dispatcher: given, proxy, tls, connections = 128, keepAliveTimeout = 4000 } = options;
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

  async function send(request: HttpRequest): Promise<HttpResponse> {
    const wire = wireBody(request);
    let headers: Headers = request.headers;
    let { body, contentType } = wire;
    if (body instanceof FormData || body instanceof Blob) {
      // The undici package cannot read Node's built-in FormData (another undici copy): encode it here.
      const encoded = new Response(body);
      contentType = encoded.headers.get('content-type') ?? contentType;
      body = new Uint8Array(await encoded.arrayBuffer());
    }
    if (contentType && !headers.has('content-type')) {
      headers = new Headers(headers);
      headers.set('content-type', contentType);
    }
    if (body instanceof ReadableStream) body = Readable.fromWeb(body as import('node:stream/web').ReadableStream);
    // undici's own header/body timers cost nothing per request but tick about once a second: they
    // carry long limits (the 30 s default); a short limit gets a precise timer and an abort signal.
    const plan = request.timeout;
    const native = plan !== undefined && plan.ms >= PRECISE_BELOW_MS;
    const { signal, done } = native ? { signal: request.signal, done: undefined } : attemptSignal(request);
    try {
      const response = await undiciRequest(request.url, {
        method: request.method as Dispatcher.HttpMethod,
        headers,
        body: body as NonNullable<Dispatcher.DispatchOptions['body']>,
        signal: signal ?? null,
        dispatcher,
        ...(native ? { headersTimeout: plan.ms, bodyTimeout: plan.ms } : {}),
      });
      const result = new HttpResponse({
        status: response.statusCode,
        headers: response.headers,
        url: request.url,
        body: response.body as unknown as BodySource,
        request,
        signal,
      });
      if (done) result.onSettled(done);
      return result;
    } catch (error) {
      done?.();
      throw toSluiceError(error, request, signal);
    }
  }

  return {
    send,
    close: async () => {
      if (!given) await dispatcher.close();
    },
  };
}

/**
 * For transports without a native timeout (fetch, your own): an AbortSignal that fires with a
 * `TimeoutError` when the request's time limit passes, or with `AbortError` when the caller aborts.
 * Call `done()` once the response body has been read or dropped.
 */
export function attemptSignal(request: HttpRequest): { signal: AbortSignal | undefined; done: () => void } {
  const plan = request.timeout;
  const parent = request.signal;
  if (!plan) return { signal: parent, done: () => {} };
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(new TimeoutError(plan.kind, plan.limit, { method: request.method, url: request.url }));
  }, plan.ms);
  timer.unref();
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
  };
}

export interface FetchTransportOptions {
  /** Any fetch implementation. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

function fetchSource(response: Response): BodySource {
  return {
    text: () => response.text(),
    arrayBuffer: () => response.arrayBuffer(),
    get body() {
      return response.body;
    },
    dump: async () => {
      await response.body?.cancel();
    },
  };
}

/** The portable transport: any fetch (the global one, or yours), with `redirect: 'manual'`. */
export function fetchTransport(options: FetchTransportOptions = {}): Transport {
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
    const { signal, done } = attemptSignal(request);
    try {
      const init: RequestInit & { duplex?: 'half' } = {
        method: request.method,
        headers,
        body: body as BodyInit | null,
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
        body: response.body ? fetchSource(response) : null,
        request,
        signal,
      });
      result.onSettled(done);
      return result;
    } catch (error) {
      done();
      throw toSluiceError(error, request, signal);
    }
  }

  return { send, close: async () => {} };
}
