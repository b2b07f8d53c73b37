// The one place in src/ that imports middleware/ and stores/: it assembles the default chain from options.
import Keyv from 'keyv';
import { originGuard } from '../middleware/auth.js';
import { bindCredentials } from '../middleware/credentials.js';
import { errors } from '../middleware/errors.js';
import { logEvents, logging, loggingSink } from '../middleware/logging.js';
import { pace } from '../middleware/pace.js';
import { redirects } from '../middleware/redirects.js';
import { type RetryOptions, retry } from '../middleware/retry.js';
import { keyvTokenStore } from '../stores/keyv.js';
import { memoryLock } from '../stores/memory-lock.js';
import { type AuthControl, type AuthOptions, buildAuthLayers } from './auth-setup.js';
import { eventsSubscribed, publishEvent, traced } from './channels.js';
import { builtIn, compose, forgetLatest, instrument, isOurs, isPure, markPure } from './compose.js';
import { ClosedError, ConfigError, SluiceError } from './errors.js';
import { own } from './own.js';
import { addSecretNames } from './redact.js';
import type { HttpRequest } from './request.js';
import type { TokenStore } from './store.js';
import { telemetry } from './telemetry.js';
import { fetchTransport, type TlsOptions, undiciTransport } from './transport.js';
import type { EventSink, HeadersInput, Logger, Middleware, Next, SluiceEvent, Transport } from './types.js';

export interface ChainOptions {
  /** Per-attempt timeout in ms. @default 30000 */
  timeout?: number | undefined;
  /** Total deadline across attempts and waits, in ms. @default Infinity */
  deadline?: number | undefined;
  /** Retry settings, a retry limit, or `false` for none. @default { limit: 2 } */
  retry?: RetryOptions | number | false | undefined;
  /** Redirect hops followed inside the chain; 0 returns 3xx responses as they are. @default 10 */
  maxRedirects?: number | undefined;
  /**
   * Follow a 307/308 to another origin with the request body. Off by default: a body (a password, a
   * payment) is not handed to a host the caller never named. @default false
   */
  crossOriginRedirectBody?: boolean | undefined;
  /** pino, console or winston: one line per attempt, retry, redirect and token event. */
  logger?: Logger | undefined;
  /** @default 'info' */
  logLevel?: 'debug' | 'info' | undefined;
  /** Receives every event (attempts, retries, redirects, tokens). */
  onEvent?: EventSink | undefined;
  /**
   * Replace the default chain (`[logging, errors, retry, redirects]`), or change it:
   * `middleware: (defaults) => [mine, ...defaults]`.
   */
  middleware?: (readonly Middleware[] | ((defaults: readonly Middleware[]) => readonly Middleware[])) | undefined;
  /** `'undici'` (default, fastest), `'fetch'` (global fetch, portable), or a transport of your own. */
  transport?: 'undici' | 'fetch' | Transport | undefined;
  /** A fetch implementation; implies the fetch transport. */
  fetch?: typeof globalThis.fetch | undefined;
  /** undici transport: a dispatcher of your own (not closed by the client). */
  dispatcher?: import('undici').Dispatcher | undefined;
  /** undici transport: an HTTP(S) proxy URL. */
  proxy?: string | undefined;
  /** undici transport: CA, client certificate, verification. */
  tls?: TlsOptions | undefined;
  /** undici transport: connections per origin. @default 128 */
  connections?: number | undefined;
  /**
   * Client-side pacing, opt-in: once an answer says an origin's limit is spent until T (remaining 0
   * with a reset, a 429 or a `Retry-After`), later calls to it send nothing before T. `'wait'` holds
   * them (through the retry policy, within each call's budget and `retry.maxRetryAfter`); `'fail'`
   * fails them at once with `RateLimitError` (`RATE_LIMIT_PACED`). @default false
   */
  paceRateLimits?: 'wait' | 'fail' | false | undefined;
  /**
   * OpenTelemetry spans (one per call, one per attempt, token requests, lock waits), W3C trace-context
   * headers and metrics, through `@opentelemetry/api` when it is installed (an optional peer) and an SDK
   * is registered. `false` turns them off. @default true
   */
  telemetry?: boolean | undefined;
  /** Credentials: one layer, or several (e.g. a gateway API key plus an OAuth token). */
  auth?: AuthOptions | readonly AuthOptions[] | undefined;
  /**
   * More header, query and body field names that carry secrets: masked in logs, errors and events,
   * and never sent to an origin that is not the API's. Names a credential is placed in are added
   * on their own.
   */
  redact?: readonly string[] | undefined;
}

/** The pieces of the default chain that sit around the auth layers (added by the token code). */
export interface ChainParts {
  /** The API's base URL: its origin may receive credentials. */
  baseURL?: string | undefined;
  /** The client's default headers: logins through a grant's `context.fetch` carry them too. */
  headers?: HeadersInput | undefined;
  /** Leave the errors middleware out (createFetch returns error responses as they are). */
  withoutErrors?: boolean;
}

export interface Chain {
  /** One call through the chain. Its failure is what `failure()` makes of it. */
  readonly run: Next;
  /** What a failed call rejects with: a shutdown's abort is a `ClosedError` once `close()` was called. */
  failure(request: HttpRequest, error: unknown): unknown;
  readonly transport: Transport;
  /**
   * The event sink a call's request starts with: the client-wide one (undefined when nobody listens),
   * seen through the logging layer when that is the chain's first.
   */
  readonly events: EventSink | undefined;
  /** `api.auth`: present when `auth` was given. */
  readonly auth: AuthControl | undefined;
  /** True for a URL on an origin that may receive credentials (baseURL's and every auth layer's). */
  readonly mayReceiveCredentials: (url: string) => boolean;
  /**
   * Every layer and the transport are Sluice's own: nothing but the caller reads a response, so a body
   * the caller reads as text may be held as text (`CallOptions.textBody`).
   */
  readonly builtInOnly: boolean;
  subscribe(listener: EventSink): () => void;
  close(): Promise<void>;
}

function pickTransport(options: ChainOptions): Transport {
  const { transport, fetch, dispatcher, proxy, connections } = options;
  const tls = own(options.tls);
  const undiciOnly = dispatcher !== undefined || proxy !== undefined || tls !== undefined || connections !== undefined;
  if (typeof transport === 'object') {
    if (typeof transport.send !== 'function') throw new ConfigError('transport.send must be a function');
    return transport;
  }
  if (transport === 'fetch' || fetch !== undefined) {
    if (transport === 'undici')
      throw new ConfigError('fetch implies the fetch transport; do not also pass transport: "undici"');
    if (undiciOnly) throw new ConfigError('dispatcher, proxy, tls and connections apply to the undici transport only');
    return fetchTransport(fetch ? { fetch } : {});
  }
  if (transport !== undefined && transport !== 'undici') {
    throw new ConfigError(`transport must be 'undici', 'fetch' or a Transport, got ${String(transport)}`);
  }
  return undiciTransport({
    ...(dispatcher ? { dispatcher } : {}),
    ...(proxy ? { proxy } : {}),
    ...(tls ? { tls } : {}),
    ...(connections !== undefined ? { connections } : {}),
  });
}

function retryOptions(options: ChainOptions): RetryOptions {
  const { retry: given, timeout, deadline } = options;
  const base: RetryOptions =
    given === false
      ? { limit: 0 }
      : typeof given === 'number'
        ? { limit: given }
        : given === undefined
          ? {}
          : own(given);
  if (timeout !== undefined) base.timeout = timeout;
  if (deadline !== undefined) base.deadline = deadline;
  return base;
}

export function buildChain(options: ChainOptions, parts: ChainParts = {}): Chain {
  const listeners: EventSink[] = [];
  if (options.onEvent) {
    if (typeof options.onEvent !== 'function') throw new ConfigError('onEvent must be a function');
    listeners.push(options.onEvent);
  }
  const { telemetry: traces = true } = options;
  const tel = traces ? telemetry() : undefined;
  const hub: EventSink = (event: SluiceEvent) => {
    for (const listener of listeners) listener(event);
    publishEvent(event);
    tel?.events(event);
  };
  // The logger's token lines: token events only, so a logger alone makes no call produce events.
  let logToken: EventSink | undefined;
  const tokenHub: EventSink = (event: SluiceEvent) => {
    try {
      hub(event);
    } finally {
      logToken?.(event);
    }
  };
  // Events are produced only for someone: a listener, or a subscriber to a sluice:* channel; token
  // events also for the logger and for OpenTelemetry (token request and lock wait spans).
  const events = () => (listeners.length > 0 || eventsSubscribed() ? hub : undefined);
  const tokenEvents = () => (tel || logToken || events() ? tokenHub : undefined);
  const transport = pickTransport(options);
  const authLayers = options.auth
    ? buildAuthLayers(options.auth, parts, transport, tokenEvents, { store: defaultStore, lock: memoryLock })
    : undefined;
  const defaults: Middleware[] = [];
  if (options.logger) {
    const { logger, logLevel = 'info' } = options;
    if (typeof logger.info !== 'function' || typeof logger.warn !== 'function') {
      throw new ConfigError('logger must have debug, info, warn and error methods (pino, console and winston do)');
    }
    defaults.push(logging({ logger, level: logLevel }));
    // Token events happen outside any one request: they reach the logger through the token hub.
    logToken = logEvents({ logger, level: logLevel });
  }
  if (!parts.withoutErrors) defaults.push(errors());
  defaults.push(retry(retryOptions(options)));
  const { paceRateLimits = false } = options;
  if (paceRateLimits !== false && paceRateLimits !== 'wait' && paceRateLimits !== 'fail')
    throw new ConfigError(`paceRateLimits must be 'wait', 'fail' or false, got ${String(paceRateLimits)}`);
  if (paceRateLimits) defaults.push(pace({ mode: paceRateLimits }));
  defaults.push(...(authLayers?.above ?? []));
  const maxRedirects = options.maxRedirects ?? 10;
  if (maxRedirects > 0)
    defaults.push(redirects({ max: maxRedirects, crossOriginBody: options.crossOriginRedirectBody === true }));
  else if (maxRedirects !== 0)
    throw new ConfigError(`maxRedirects must be a non-negative integer, got ${maxRedirects}`);
  const origins = [
    ...new Set([...(parts.baseURL ? [new URL(parts.baseURL).origin] : []), ...(authLayers?.origins ?? [])]),
  ];
  const { redact = [] } = options;
  if (!Array.isArray(redact) || redact.some((name) => typeof name !== 'string'))
    throw new ConfigError('redact must be an array of header or field names');
  const secretNames = [...redact, ...(authLayers?.names ?? [])];
  addSecretNames(secretNames);
  // Credentials in headers and query parameters go to the named origins only, on every hop.
  if (origins.length > 0) defaults.push(bindCredentials({ origins, names: secretNames }));
  defaults.push(...(authLayers?.below ?? []));

  const { middleware } = options;
  const list = typeof middleware === 'function' ? middleware(defaults) : (middleware ?? defaults);
  if (!Array.isArray(list)) throw new ConfigError('middleware must be an array of functions, or return one');
  let closing: Promise<void> | undefined;
  const closed = (request: HttpRequest, cause?: unknown) =>
    new ClosedError({ method: request.method, url: request.url, attempts: request.state.attempts, cause });
  // A retry, redirect hop or re-issue due after close() is not sent: it fails as ClosedError. A
  // transport of Sluice's own hands up an answer the layers above may add their steps to; one of yours
  // might hand up (and look at) another chain's answer, so none may be added to after it.
  const ownTransport = isOurs(transport.send);
  const send: Next = ownTransport
    ? markPure((request) => (closing ? Promise.reject(closed(request)) : transport.send(request)))
    : (request) => {
        if (closing) return Promise.reject(closed(request));
        const sent = transport.send(request);
        forgetLatest();
        return sent;
      };
  let composed: Next;
  try {
    const attempt = instrument(send);
    composed = compose(list, builtIn(tel ? tel.attempt(attempt) : attempt));
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  // A logging layer on top of the chain: its sink goes on each call's request at once (see `loggingSink`).
  const topSink = loggingSink(list[0]);
  const tracedRun = traced(tel ? tel.call(composed) : composed);
  const run: Next = (request) => (closing ? Promise.reject(closed(request)) : tracedRun(request));
  // The whole chain is Sluice's own: the caller may add its step to the answer too (see `after`).
  if (isPure(composed)) markPure(run);
  return {
    run,
    failure(request, error) {
      // A call in flight when close() ended its token request or its connection fails as ClosedError,
      // not as an abort the caller never asked for.
      const shutDown =
        closing &&
        !request.signal?.aborted &&
        error instanceof SluiceError &&
        (error.code === 'ABORTED' || error.code === 'ERR_CLIENT_CLOSED') &&
        !(error instanceof ClosedError);
      return shutDown ? closed(request, error) : error;
    },
    transport,
    get events() {
      return topSink ? topSink(events()) : events();
    },
    auth: authLayers?.control,
    mayReceiveCredentials: originGuard(origins),
    builtInOnly: ownTransport && isPure(composed),
    close() {
      // Once: later calls are ClosedError, a second close() is the first one's promise. Token requests
      // in flight are ended first: the transport's close waits for what is still running.
      closing ??= (async () => {
        const auth = authLayers?.close();
        await transport.close();
        await auth;
      })();
      return closing;
    },
    subscribe(listener) {
      listeners.push(listener);
      return () => {
        const index = listeners.indexOf(listener);
        if (index !== -1) listeners.splice(index, 1);
      };
    },
  };
}

/** The default store: an in-memory Keyv, with the same error and timeout handling as shared ones. */
function defaultStore(): TokenStore {
  return keyvTokenStore(new Keyv(), { shared: false });
}
