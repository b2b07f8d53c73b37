import { fileURLToPath } from 'node:url';
import { createFetch as createOfetch, FetchError, type FetchOptions } from 'ofetch';
import { withBase, withQuery } from 'ufo';
import type { AuthControl, AuthOptions } from './auth-setup.js';
import { bufferBody } from './body.js';
import { buildChain, type Chain, type ChainOptions } from './chain.js';
import { after } from './compose.js';
import { ConfigError, HttpError, httpErrorFor, SluiceError } from './errors.js';
import { parseJson, type RequestMeta, toSluiceError } from './normalize.js';
import { checkNames, defaultHeaders, headersInit, own, ownValue } from './own.js';
import { type PaginateOptions, paginate } from './paginate.js';
import { type CallOptions, HttpRequest, REQUEST_OPTIONS, type RequestBody, resolveURL } from './request.js';
import type { HttpResponse } from './response.js';
import type { EventSink, HeadersInput } from './types.js';

export type QueryValue = string | number | boolean | null | undefined | readonly (string | number | boolean)[];

export interface ClientOptions extends ChainOptions {
  /** Joined with relative request paths; must be an absolute http(s) URL. */
  baseURL?: string | undefined;
  /**
   * With a `baseURL`, an absolute URL to an origin that is neither the baseURL's nor in `auth.origins`
   * is refused before anything is sent (`ERR_ORIGIN_NOT_ALLOWED`). `true` lets it go out, with no
   * credential at all. @default false
   */
  allowAbsoluteUrls?: boolean | undefined;
  /**
   * Largest response body read into memory (everything but `responseType: 'stream'`), counted after
   * decompression: a bigger (or endless, or gzip-bomb) body fails with `ERR_RESPONSE_TOO_LARGE` at
   * the cap. @default 67108864 (64 MiB)
   */
  maxResponseBytes?: number | undefined;
  /** Sent with every request; per-call headers win. */
  headers?: HeadersInput | undefined;
  /** Sent with every request; per-call query wins. */
  query?: Record<string, QueryValue> | undefined;
}

export type ResponseType = 'json' | 'text' | 'arrayBuffer' | 'blob' | 'stream';

export interface RequestOptions {
  method?: string | undefined;
  query?: Record<string, QueryValue> | undefined;
  headers?: HeadersInput | undefined;
  /** JSON-serializable values are sent as JSON; strings, bytes, FormData, URLSearchParams, Blob and streams as they are. */
  body?: unknown | undefined;
  /** @default JSON when the response says JSON (or says nothing), text otherwise */
  responseType?: ResponseType | undefined;
  signal?: AbortSignal | undefined;
  /** Per-attempt timeout in ms. */
  timeout?: number | undefined;
  /** Total deadline in ms. */
  deadline?: number | undefined;
  /** Retries after the first attempt; `false` for none. */
  retry?: number | false | undefined;
  /** Your data, visible to middleware as `request.context`. */
  context?: Record<string, unknown> | undefined;
  /** `false`: send no credential. */
  auth?: boolean | undefined;
  /** Buffer a stream body up to this many bytes so it can be re-sent after a retry or a 401. */
  bufferBody?: number | undefined;
}

/** The full response, from `raw()` and `head()`. */
export interface SluiceResponse<T> {
  status: number;
  statusText: string;
  headers: Headers;
  url: string;
  ok: boolean;
  data: T;
}

/**
 * One call: carried through ofetch to the chain, and the request as its errors name it (the resolved
 * URL is only worked out when an error needs it).
 */
class Call implements RequestMeta {
  readonly options: CallOptions;
  readonly context: Record<string, unknown> | undefined;
  response: HttpResponse | undefined = undefined;
  /** The request the chain was given, once it was. */
  request: HttpRequest | undefined = undefined;
  readonly method: string;
  readonly chain: Chain;
  /** How the client reads the body, from the call's `responseType`. */
  readonly read: ReadAs;
  readonly #url: string;
  readonly #base: string | undefined;
  constructor(
    options: CallOptions,
    context: Record<string, unknown> | undefined,
    method: string,
    url: string,
    base: string | undefined,
    chain: Chain,
    read: ReadAs,
  ) {
    this.options = options;
    this.context = context;
    this.method = method;
    this.read = read;
    this.#url = url;
    this.#base = base;
    this.chain = chain;
  }
  get url(): string {
    return resolveURL(this.#url, this.#base);
  }
}

const JSON_TYPE = /^application\/(?:[\w!#$%&*.^`~-]*\+)?json/i;

/**
 * How the client reads a call's body (from its `responseType`): text, bytes or a blob as ofetch asks
 * (0); JSON when the content type says so, or there is none and it parses, else text (1: no
 * `responseType`); JSON whatever the content type (2: `'json'`); a stream (3).
 */
type ReadAs = 0 | 1 | 2 | 3;
const AS_IS: ReadAs = 0;
const JSON_OR_TEXT: ReadAs = 1;
const JSON_ONLY: ReadAs = 2;
const STREAM: ReadAs = 3;

function readAsOf(responseType: RequestOptions['responseType']): ReadAs {
  if (responseType === undefined) return JSON_OR_TEXT;
  if (responseType === 'json') return JSON_ONLY;
  return responseType === 'stream' ? STREAM : AS_IS;
}

/** The `parseResponse` of every call that reads JSON: the view's `text()` has decoded it already. */
const DECODED = (data: unknown): unknown => data;

/**
 * What ofetch sees of a response. ofetch tests `body` only for truthiness (and hands it out for
 * `responseType: 'stream'`), so a marker stands in for it: building a web stream per response would
 * cost more than the rest of the request.
 */
class OfetchResponse {
  _data: unknown = undefined;
  readonly body: unknown;
  readonly response: HttpResponse;
  readonly #read: ReadAs;
  constructor(response: HttpResponse, read: ReadAs) {
    this.response = response;
    this.#read = read;
    this.body = read === STREAM ? response.body : true;
  }
  get status() {
    return this.response.status;
  }
  get statusText() {
    return this.response.statusText;
  }
  get headers() {
    return this.response.headers;
  }
  get ok() {
    return this.response.ok;
  }
  get url() {
    return this.response.url;
  }
  /**
   * For a call that reads JSON, the decoded data: ofetch hands what this gives to the call's
   * `parseResponse`, which passes it on as it is (one shared function, no closure per call held while
   * the call waits).
   */
  text(): Promise<unknown> {
    const read = this.#read;
    if (read !== JSON_OR_TEXT && read !== JSON_ONLY) return this.response.text();
    const { response } = this;
    return response.text().then((text) => decode(text, response, response.request, read === JSON_ONLY));
  }
  arrayBuffer() {
    return this.response.arrayBuffer();
  }
  blob() {
    return this.response.blob();
  }
}

const CLIENT_OPTIONS = new Set<string>([
  'baseURL',
  'headers',
  'query',
  'timeout',
  'deadline',
  'retry',
  'maxRedirects',
  'logger',
  'logLevel',
  'onEvent',
  'middleware',
  'transport',
  'fetch',
  'dispatcher',
  'proxy',
  'tls',
  'connections',
  'auth',
  'allowAbsoluteUrls',
  'crossOriginRedirectBody',
  'redact',
  'maxResponseBytes',
  'paceRateLimits',
  'telemetry',
]);

export function validateClientOptions(options: object, extra: readonly string[] = []): void {
  for (const name of Object.keys(options)) {
    if (!CLIENT_OPTIONS.has(name) && !extra.includes(name)) {
      throw new ConfigError(`unknown option "${name}"; valid options are: ${[...CLIENT_OPTIONS, ...extra].join(', ')}`);
    }
  }
  const { baseURL, timeout, deadline, maxResponseBytes } = options as ClientOptions;
  if (maxResponseBytes !== undefined && !(Number.isSafeInteger(maxResponseBytes) && maxResponseBytes > 0)) {
    throw new ConfigError(`maxResponseBytes must be a positive integer, got ${String(maxResponseBytes)}`);
  }
  if (baseURL !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(baseURL);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new ConfigError('baseURL must be an absolute http(s) URL such as https://api.example.com/v1/');
    }
  }
  for (const [name, value] of [
    ['timeout', timeout],
    ['deadline', deadline],
  ] as const) {
    if (value !== undefined && !(typeof value === 'number' && value > 0)) {
      throw new ConfigError(`${name} must be a positive number of milliseconds, got ${String(value)}`);
    }
  }
}

/** Built by `createClient`. Every method throws only `SluiceError` subclasses. */
export class SluiceClient {
  readonly #chain: Chain;
  readonly #ofetch: ReturnType<typeof createOfetch>;
  readonly #baseURL: string | undefined;
  readonly #query: Record<string, QueryValue> | undefined;
  /** The client's default headers, copied into each call's own `Headers`. */
  readonly #headers: Headers | undefined;
  /** Per-call options every call starts from (the client's maxResponseBytes). */
  readonly #defaults: CallOptions;
  /** Token control (`token()`, `invalidate()`, `onTokenChange`); present when `auth` was given. */
  readonly auth: AuthControl | undefined;

  constructor(options: ClientOptions, chain: Chain) {
    this.#chain = chain;
    this.auth = chain.auth;
    this.#baseURL = options.baseURL;
    this.#query = options.query === undefined ? undefined : own(options.query);
    this.#headers = options.headers === undefined ? undefined : defaultHeaders(options.headers);
    // A body the caller reads as text may be held as text only when no layer of yours could ask it for bytes.
    const base = chain.builtInOnly ? TEXT_OPTIONS : NO_OPTIONS;
    const { maxResponseBytes } = options;
    this.#defaults = maxResponseBytes === undefined ? base : Object.freeze(own({ ...base, maxResponseBytes }));
    const run = chain.run;
    const events = (): EventSink | undefined => chain.events;
    // With a baseURL, the caller's URL must stay on the named origins (CVE-2025-27152 in axios).
    const mayCall =
      options.baseURL !== undefined && options.allowAbsoluteUrls !== true ? chain.mayReceiveCredentials : undefined;
    const send = (call: Call, init: OfetchCall, url: string, body: RequestBody): Promise<OfetchResponse> => {
      const request = new HttpRequest({
        method: init.method,
        url,
        headers: init.headers.headers,
        body,
        signal: init.signal,
        options: call.options,
        context: call.context,
        events: events(),
      });
      call.request = request;
      return after(run(request), run, answered, undefined, call, undefined);
    };
    // Not async: while the answer is awaited, a call holds a promise here, not a suspended function.
    const chainFetch = (target: ResolvedURL, init: OfetchCall): Promise<OfetchResponse> => {
      const url = String(target);
      const call = init.sluiceCall;
      if (mayCall && !mayCall(url)) {
        return Promise.reject(
          new SluiceError(
            "absolute URL to an origin that is not the baseURL's (nor in auth.origins); pass a path, or set allowAbsoluteUrls: true to send it without credentials",
            { code: 'ERR_ORIGIN_NOT_ALLOWED', method: init.method, url },
          ),
        );
      }
      const body = (init.body ?? null) as RequestBody;
      const limit = call.options.bufferBody;
      try {
        if (limit === undefined) return send(call, init, url, body);
        return bufferBody(body, limit).then((buffered) => send(call, init, url, buffered));
      } catch (error) {
        return Promise.reject(error);
      }
    };
    // ofetch's defaults have every option ofetch reads as an own property (most of them undefined), and
    // ofetch spreads them first into each call's options: a polluted Object.prototype (an `onRequest`,
    // a `params`) is never picked up, and the clone of one fixed shape is cheap. They have no headers:
    // the client merges its own and the call's once, and ofetch only carries them (`OfetchHeaders`).
    // The URL (baseURL, query) is resolved before ofetch sees it, with the same ufo functions ofetch
    // would use, and handed over as an object: ofetch then skips its own resolution.
    this.#ofetch = createOfetch({
      fetch: chainFetch as unknown as typeof fetch,
      Headers: OfetchHeaders as unknown as typeof Headers,
    }).create(OFETCH_DEFAULTS as unknown as FetchOptions);
  }

  /** Subscribes to every event; returns the unsubscribe function. */
  on(listener: EventSink): () => void {
    return this.#chain.subscribe(listener);
  }

  /** Any method; resolves to the parsed body. */
  async request<T = unknown>(url: string, options: RequestOptions = {}): Promise<T> {
    return (await this.#send(url, options, ownValue(options, 'method')))._data as T;
  }

  /** Any method; resolves to status, headers and the parsed body. */
  async raw<T = unknown>(url: string, options: RequestOptions = {}): Promise<SluiceResponse<T>> {
    const view = await this.#send(url, options, ownValue(options, 'method'));
    return new RawResponse<T>(view.response, view._data as T);
  }

  get<T = unknown>(url: string, options: Omit<RequestOptions, 'method' | 'body'> = {}): Promise<T> {
    return this.#data<T>(url, options, 'GET');
  }
  delete<T = unknown>(url: string, options: Omit<RequestOptions, 'method'> = {}): Promise<T> {
    return this.#data<T>(url, options, 'DELETE');
  }
  post<T = unknown>(url: string, body?: unknown, options: Omit<RequestOptions, 'method' | 'body'> = {}): Promise<T> {
    return this.#data<T>(url, options, 'POST', body);
  }
  put<T = unknown>(url: string, body?: unknown, options: Omit<RequestOptions, 'method' | 'body'> = {}): Promise<T> {
    return this.#data<T>(url, options, 'PUT', body);
  }
  patch<T = unknown>(url: string, body?: unknown, options: Omit<RequestOptions, 'method' | 'body'> = {}): Promise<T> {
    return this.#data<T>(url, options, 'PATCH', body);
  }
  /**
   * Every item of every page, as an async iterator: `for await (const repo of api.paginate('user/repos'))`.
   * Pages follow `Link: rel="next"` by default, or `next: 'page' | 'cursor' | (page) => ...`; each page
   * goes through the whole chain; `maxPages` (1000) and `maxItems` bound it.
   */
  paginate<T = unknown>(url: string, options: PaginateOptions<T> = {}): AsyncGenerator<T, void, undefined> {
    return paginate<T>((target, request) => this.raw(target, request), url, own(options));
  }

  /** `paginate` collected into an array (bound it with `maxItems` or `maxPages`). */
  async paginateAll<T = unknown>(url: string, options: PaginateOptions<T> = {}): Promise<T[]> {
    const all: T[] = [];
    for await (const item of this.paginate<T>(url, options)) all.push(item);
    return all;
  }

  /** HEAD: resolves to status and headers. */
  async head(url: string, options: Omit<RequestOptions, 'method' | 'body'> = {}): Promise<SluiceResponse<undefined>> {
    const view = await this.#send(url, options, 'HEAD');
    return new RawResponse<undefined>(view.response, undefined);
  }

  // Not async: the data is picked in the same step that makes a failure the caller's (`settled`).
  #data<T>(url: string, options: RequestOptions, method: string, body?: unknown): Promise<T> {
    return this.#send(url, options, method, body, dataOf) as Promise<T>;
  }

  // Not async: the work before the wire is done here, and while the answer is awaited the call holds
  // one rejection handler (`settled`); a failure made there still has the caller's async frames for
  // `callSite`, since V8 follows whoever awaits the handler's promise. What failed outside the old
  // async function's try block still rejects as it is; what failed inside it goes through `failureOf`,
  // as it did.
  #send<R = OfetchResponse>(
    url: string,
    options: RequestOptions,
    method = 'GET',
    given?: unknown,
    pick?: (view: OfetchResponse) => R,
  ): Promise<R> {
    let call: Call;
    let target: string;
    let body: unknown;
    let responseType: RequestOptions['responseType'];
    let headers: HeadersInput | undefined;
    try {
      body = given === undefined ? ownValue(options, 'body') : given;
      checkNames('request', options, REQUEST_OPTIONS);
      responseType = ownValue(options, 'responseType');
      call = new Call(
        callOptionsOf(options, this.#defaults),
        ownValue(options, 'context'),
        method.toUpperCase(),
        url,
        this.#baseURL,
        this.#chain,
        readAsOf(responseType),
      );
      const query = ownValue(options, 'query');
      headers = ownValue(options, 'headers');
      target = this.#baseURL === undefined ? url : withBase(url, this.#baseURL);
      if (this.#query !== undefined || query !== undefined)
        target = withQuery(target, { ...this.#query, ...(query === undefined ? undefined : own(query)) });
    } catch (error) {
      return Promise.reject(error);
    }
    let pending: Promise<OfetchResponse>;
    try {
      pending = this.#start(target, options, body, responseType, headers, call);
    } catch (error) {
      return rejectedWith(error, call);
    }
    return settled(pending, call, pick);
  }

  #start(
    target: string,
    options: RequestOptions,
    body: unknown,
    responseType: RequestOptions['responseType'],
    given: HeadersInput | undefined,
    call: Call,
  ): Promise<OfetchResponse> {
    // The call's own Headers: the client's, then the call's over them (ofetch's merge, done once here).
    let headers: Headers | undefined;
    if (this.#headers !== undefined) {
      headers = new Headers(this.#headers);
      // Each of the call's pairs over the defaults, the last one winning (ofetch's merge).
      if (given !== undefined) for (const [name, value] of pairsOf(given)) headers.set(name, value);
    } else if (given !== undefined) headers = new Headers(headersInit(given));
    const ofetchOptions = new OfetchCall(call.method, headers, call);
    if (body !== undefined) ofetchOptions.body = body as FetchOptions['body'];
    const signal = ownValue(options, 'signal');
    if (signal !== undefined) ofetchOptions.signal = signal;
    if (call.read === JSON_OR_TEXT || call.read === JSON_ONLY) {
      ofetchOptions.parseResponse = DECODED;
    } else {
      ofetchOptions.responseType = responseType;
    }
    return this.#ofetch.raw(
      new ResolvedURL(target) as unknown as string,
      ofetchOptions as unknown as FetchOptions,
    ) as unknown as Promise<OfetchResponse>;
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.#chain.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

const dataOf = (view: OfetchResponse): unknown => view._data;

/** The chain's answer for ofetch, kept on the call for its errors. */
function answered(response: HttpResponse, call: Call): OfetchResponse {
  call.response = response;
  return new OfetchResponse(response, call.read);
}

/** A resolved URL, as an object: ofetch resolves only string requests (see the constructor). */
class ResolvedURL {
  /** ofetch falls back to `request.headers` when a call has none: own, so never a polluted prototype's. */
  readonly headers = undefined;
  readonly #url: string;
  constructor(url: string) {
    this.#url = url;
  }
  toString(): string {
    return this.#url;
  }
}

class RawResponse<T> implements SluiceResponse<T> {
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly ok: boolean;
  readonly data: T;
  readonly #response: HttpResponse;
  constructor(response: HttpResponse, data: T) {
    this.#response = response;
    this.status = response.status;
    this.statusText = response.statusText;
    this.url = response.url;
    this.ok = response.ok;
    this.data = data;
  }
  get headers(): Headers {
    return this.#response.headers;
  }
}

const NO_OPTIONS: CallOptions = Object.freeze(own({}));

/** A call's options when it sets none: its body is read as text (JSON, the default `responseType`). */
const TEXT_OPTIONS: CallOptions = Object.freeze(own({ textBody: true }));

const STREAM_OPTIONS: CallOptions = Object.freeze(own({ streamBody: true }));

/** A call's headers as pairs, in their order: a record through its own properties. */
function pairsOf(given: HeadersInput): Iterable<readonly [string, string]> {
  return given instanceof Headers || Array.isArray(given)
    ? (given as Iterable<readonly [string, string]>)
    : new Headers(headersInit(given));
}

/**
 * What ofetch gets as its `Headers` class: it wraps the call's own `Headers` (built by the client),
 * made only when something is set (ofetch sets content-type and accept for a JSON body).
 */
class OfetchHeaders {
  headers: Headers | undefined;
  constructor(init: Headers | undefined) {
    this.headers = init;
  }
  get(name: string): string | null {
    return this.headers === undefined ? null : this.headers.get(name);
  }
  has(name: string): boolean {
    return this.headers?.has(name) === true;
  }
  set(name: string, value: string): void {
    this.headers ??= new Headers();
    this.headers.set(name, value);
  }
}

/** Every option ofetch 1.x reads, present and undefined unless Sluice sets it (see the constructor). */
const OFETCH_DEFAULTS = Object.freeze({
  baseURL: undefined,
  body: undefined,
  duplex: undefined,
  headers: undefined,
  ignoreResponseError: undefined,
  method: undefined,
  onRequest: undefined,
  onRequestError: undefined,
  onResponse: undefined,
  onResponseError: undefined,
  params: undefined,
  parseResponse: undefined,
  query: undefined,
  responseType: undefined,
  retry: false,
  retryDelay: undefined,
  retryStatusCodes: undefined,
  signal: undefined,
  timeout: undefined,
  sluiceCall: undefined,
});

/** One call's options for ofetch, over its defaults: a class, so every call's object has one shape. */
class OfetchCall {
  readonly method: string;
  readonly headers: OfetchHeaders;
  body: FetchOptions['body'] = undefined;
  signal: AbortSignal | undefined = undefined;
  parseResponse: ((data: unknown) => unknown) | undefined = undefined;
  responseType: ResponseType | undefined = undefined;
  // Read by ofetch from these options themselves, before the merge: own, so never a polluted prototype's.
  readonly query = undefined;
  readonly params = undefined;
  readonly sluiceCall: Call;
  constructor(method: string, headers: Headers | undefined, call: Call) {
    this.method = method;
    // ofetch passes this to `new OfetchHeaders()` as it is.
    this.headers = headers as unknown as OfetchHeaders;
    this.sluiceCall = call;
  }
}

function callOptionsOf(options: RequestOptions, defaults: CallOptions): CallOptions {
  const timeout = ownValue(options, 'timeout');
  const deadline = ownValue(options, 'deadline');
  const retry = ownValue(options, 'retry');
  const auth = ownValue(options, 'auth');
  const bufferBody = ownValue(options, 'bufferBody');
  const responseType = ownValue(options, 'responseType');
  const stream = responseType === 'stream';
  // Bytes kept as they came: the caller asked for them, or for a stream.
  const bytes = stream || responseType === 'arrayBuffer' || responseType === 'blob';
  if (
    timeout === undefined &&
    deadline === undefined &&
    retry === undefined &&
    auth === undefined &&
    bufferBody === undefined
  ) {
    if (!bytes) return defaults;
    if (stream && (defaults === TEXT_OPTIONS || defaults === NO_OPTIONS)) return STREAM_OPTIONS;
  }
  const call: CallOptions = own({ ...defaults });
  if (bytes) delete call.textBody;
  if (stream) call.streamBody = true;
  if (timeout !== undefined) call.timeout = timeout;
  if (deadline !== undefined) call.deadline = deadline;
  if (retry !== undefined) call.retry = retry === false ? 0 : retry;
  if (auth !== undefined) call.auth = auth;
  if (bufferBody !== undefined) call.bufferBody = bufferBody;
  return call;
}

function decode(text: string, response: HttpResponse, meta: RequestMeta, forceJson: boolean): unknown {
  if (text.length === 0) return undefined;
  const type = response.header('content-type') ?? '';
  if (forceJson || JSON_TYPE.test(type)) return parseJson(text, meta);
  if (type === '') {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

const THIS_FILE = fileURLToPath(import.meta.url);

/**
 * A call's answer (`pick` of it, in the same step); a failure becomes the `SluiceError` the caller
 * gets, with the call's site on it (`failureOf`).
 */
function settled<R>(
  pending: Promise<OfetchResponse>,
  call: Call,
  pick: ((view: OfetchResponse) => R) | undefined,
): Promise<R> {
  return pending.then(pick, (error: unknown) => {
    throw failureOf(error, call);
  }) as Promise<R>;
}

/** `failureOf(error)` as a rejection; if making it throws, that rejects instead (as in an async catch). */
function rejectedWith(error: unknown, call: Call): Promise<never> {
  try {
    return Promise.reject(failureOf(error, call));
  } catch (failure) {
    return Promise.reject(failure);
  }
}

function failureOf(error: unknown, call: Call): SluiceError {
  const request = call.request;
  let failure = unwrap(error, call, call.response);
  if (request) failure = call.chain.failure(request, failure) as SluiceError;
  const attempts = request?.state.attempts ?? 0;
  if (failure.attempts < attempts) failure.attempts = attempts;
  markCallSite(failure);
  return failure;
}

/** Records, on an error about to reach the caller, the caller's frames (async ones included). */
function markCallSite(error: SluiceError): void {
  if (error.callSite !== undefined) return;
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, markCallSite);
  const frames = (holder.stack ?? '')
    .split('\n')
    .slice(1)
    .filter((line) => !line.includes(THIS_FILE) && !line.includes('(node:internal/'))
    .join('\n');
  Object.defineProperty(error, 'callSite', { value: frames, enumerable: false, configurable: true, writable: true });
  const first = frames.split('\n')[0];
  if (first && error.stack && !error.stack.includes(first.trim())) {
    error.stack = `${error.stack}\n    --- the call ---\n${frames}`;
  }
}

function unwrap(error: unknown, meta: RequestMeta, response: HttpResponse | undefined): SluiceError {
  if (error instanceof FetchError) {
    if (error.cause !== undefined) return toSluiceError(error.cause, meta);
    // A custom chain without errors(): ofetch itself rejected a status of 400 or above.
    if (response && response.status >= 400) {
      return httpErrorFor({
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
        body: (error as { data?: unknown }).data,
        method: meta.method,
        url: response.url,
      });
    }
  }
  if (error instanceof HttpError) return error;
  return toSluiceError(error, meta);
}

/** A client over the default chain (or yours). Invalid options throw `ConfigError` here, not later. */
/** A client made with `auth`: its `auth` control is there. */
export type AuthenticatedClient = SluiceClient & { readonly auth: AuthControl };

export function createClient(
  options: ClientOptions & { auth: AuthOptions | readonly AuthOptions[] },
): AuthenticatedClient;
export function createClient(options?: ClientOptions): SluiceClient;
export function createClient(given: ClientOptions = {}): SluiceClient {
  const options = own(given);
  validateClientOptions(options);
  return new SluiceClient(options, buildChain(options, { baseURL: options.baseURL, headers: options.headers }));
}
