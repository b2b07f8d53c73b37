import type { Readable } from 'node:stream';
import type { EventSink } from './types.js';

/** A body that can be produced again on demand: re-sent by calling it. */
export type BodyFactory = () => ReplayableBody | ReadableStream<Uint8Array> | Readable;

/** Bodies that can be sent any number of times as they are. */
export type ReplayableBody = string | Uint8Array | ArrayBuffer | URLSearchParams | FormData | Blob;

export type RequestBody =
  | ReplayableBody
  | ReadableStream<Uint8Array>
  | Readable
  | AsyncIterable<Uint8Array>
  | BodyFactory
  | null;

/** Per-call settings that middleware read; set through the client's per-call options. */
export interface CallOptions {
  /** Per-attempt timeout in ms, overriding the client's. */
  timeout?: number;
  /** Total deadline across attempts in ms, overriding the client's. */
  deadline?: number;
  /** Retries after the first attempt, overriding the client's limit. */
  retry?: number;
  /** `false` sends the request with no credential at all. */
  auth?: boolean;
  /** Buffer a one-shot stream body up to this many bytes so it can be re-sent. */
  bufferBody?: number;
  /**
   * The response body is handed out as a stream (`responseType: 'stream'`, `createFetch`): the attempt
   * ends at the headers, and the body is guarded by an idle timeout instead. Otherwise the retry or
   * timeout middleware reads the whole body inside the attempt, under its clock.
   */
  streamBody?: boolean;
  /**
   * The caller reads the body as text, and only the caller reads it (set by the client for `responseType`
   * `'json'`, `'text'` or none, when every layer and the transport are Sluice's own). A large body read
   * inside the attempt is then held decoded, as `text()` gives it; bytes asked of it later are that
   * text's UTF-8, which differs from the body's own where it had a byte order mark or invalid UTF-8.
   */
  textBody?: boolean;
  /** Largest response body read into memory, counted after decompression. @default 64 MiB */
  maxResponseBytes?: number;
}

/** Bookkeeping shared by every copy of one call's request: the call's ledger, not the request. */
export interface CallState {
  readonly id: string;
  /** Wire attempts so far (retries, re-issues and redirect hops each count). */
  attempts: number;
  /** Token generation the auth middleware attached on the latest attempt. */
  generation: number | undefined;
  /** A one-shot body has gone on the wire. */
  bodySent: boolean;
}

/**
 * The time limit of one attempt, set by the retry/timeout middleware and enforced by the transport
 * (natively on undici, with a timer and an abort signal on fetch): never an already-fired signal.
 */
export interface AttemptTimeout {
  /** Milliseconds the attempt was given when it began: for the token wait, connecting, headers and the whole body. */
  readonly ms: number;
  /**
   * The `performance.now()` instant at which the attempt ends, whatever it is waiting for then (a token,
   * the lock, the connection, the body). Absent: `ms` from when the transport starts.
   */
  readonly end?: number;
  /** Which limit this is: the per-attempt timeout, or what is left of the call's deadline. */
  readonly kind: 'attempt' | 'total';
  /** The configured limit, for the error message. */
  readonly limit: number;
}

export interface HttpRequestInit {
  method?: string;
  url: string;
  headers?: Headers | undefined;
  body?: RequestBody;
  signal?: AbortSignal | undefined;
  context?: Record<string, unknown> | undefined;
  options?: CallOptions | undefined;
  events?: EventSink | undefined;
  state?: CallState;
  timeout?: AttemptTimeout | undefined;
}

let sequence = 0;
const processTag = Math.random().toString(36).slice(2, 8);

/** A short id unique within this process run, for log correlation. */
/** Every per-call option (`RequestOptions`). */
export const REQUEST_OPTIONS: ReadonlySet<string> = new Set([
  'method',
  'query',
  'headers',
  'body',
  'responseType',
  'signal',
  'timeout',
  'deadline',
  'retry',
  'context',
  'auth',
  'bufferBody',
]);

/**
 * `url` against `baseURL` the way the client resolves a call's URL: an absolute URL stays as it is, a
 * path is appended to the base (`https://h/api/v2` + `users` = `https://h/api/v2/users`).
 */
export function resolveURL(url: string, baseURL: string | undefined): string {
  if (baseURL === undefined || /^[a-z][a-z0-9+.-]*:/i.test(url)) return url;
  return `${baseURL.replace(/\/+$/, '')}/${url.replace(/^\/+/, '')}`;
}

export function nextRequestId(): string {
  sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER;
  return `${processTag}-${sequence.toString(36)}`;
}

// Null prototype: `options.timeout` must never come from a polluted Object.prototype.
const EMPTY_OPTIONS: CallOptions = Object.freeze(Object.create(null) as CallOptions);

/** Header fields not (yet) in a `Headers`: name (lower case), value, name, value... */
export type HeaderFields = readonly string[];

const NO_FIELDS: HeaderFields = Object.freeze([]);
const NO_CHANGES: Partial<HttpRequestInit> = Object.freeze({});
// What `Headers` accepts (RFC 9110 token names; values without NUL, CR, LF or characters above 0xFF).
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\0\r\n\u0100-\uffff]/;
// Stripped from both ends of a value, as `Headers` does (HTTP whitespace: tab, LF, CR, space).
const EDGE_SPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

function isSpace(code: number): boolean {
  return code === 32 || code === 9 || code === 10 || code === 13;
}

let fieldsOf: (request: HttpRequest) => Headers | HeaderFields;

/**
 * A request's headers as a transport sends them: its `Headers` once anyone has asked for them, else
 * the fields as pairs in a flat array (undici takes those as they are). No `Headers` is built for a
 * request whose headers only middleware set through `withHeader` (the credential, most of the time).
 */
export function wireHeaders(request: HttpRequest): Headers | HeaderFields {
  return fieldsOf(request);
}

/**
 * Sluice's light, fetch-shaped request. Treat it as immutable: derive a changed copy with `with()` or
 * `withHeader()`, and copy `headers` before changing them.
 */
export class HttpRequest {
  readonly method: string;
  readonly url: string;
  readonly body: RequestBody;
  readonly signal: AbortSignal | undefined;
  /** The caller's per-call data; middleware may read it. */
  readonly context: Record<string, unknown>;
  readonly options: CallOptions;
  readonly events: EventSink | undefined;
  readonly state: CallState;
  /** This attempt's time limit; transports must honour it. */
  readonly timeout: AttemptTimeout | undefined;
  /** The headers as a `Headers`, once built (see `headers`); until then, `#fields`. */
  #headers: Headers | undefined;
  #fields: HeaderFields;

  static {
    fieldsOf = (request) => request.#headers ?? request.#fields;
  }

  /**
   * `base` (internal, for `with`): fields `init` does not name come from it, so a changed copy costs
   * no intermediate object.
   */
  constructor(init: HttpRequestInit, base?: HttpRequest) {
    // Own properties only: a field a polluted Object.prototype supplies is not the caller's. (No
    // helper closure: this runs several times per call.)
    const has = Object.hasOwn;
    this.method = (has(init, 'method') ? init.method : base?.method) ?? 'GET';
    this.url = has(init, 'url') || !base ? init.url : base.url;
    if (has(init, 'headers')) {
      // `headers: undefined` is no headers at all, as it always was.
      this.#headers = init.headers;
      this.#fields = NO_FIELDS;
    } else {
      this.#headers = base === undefined ? undefined : base.#headers;
      this.#fields = base === undefined ? NO_FIELDS : base.#fields;
    }
    this.body = (has(init, 'body') ? init.body : base?.body) ?? null;
    this.signal = has(init, 'signal') ? init.signal : base?.signal;
    this.context = (has(init, 'context') ? init.context : base?.context) ?? {};
    this.options = (has(init, 'options') ? init.options : base?.options) ?? EMPTY_OPTIONS;
    this.events = has(init, 'events') ? init.events : base?.events;
    this.state = (has(init, 'state') ? init.state : base?.state) ?? {
      id: nextRequestId(),
      attempts: 0,
      generation: undefined,
      bodySent: false,
    };
    this.timeout = has(init, 'timeout') ? init.timeout : base?.timeout;
  }

  /** The request's headers, as a `Headers` (built on first use; this request keeps it). */
  get headers(): Headers {
    if (this.#headers !== undefined) return this.#headers;
    const headers = new Headers();
    const fields = this.#fields;
    for (let i = 0; i < fields.length; i += 2) headers.append(fields[i]!, fields[i + 1]!);
    this.#headers = headers;
    return headers;
  }

  /** One header's value without building a `Headers`; `name` must be lower case. */
  header(name: string): string | null {
    if (this.#headers !== undefined) return this.#headers.get(name);
    const fields = this.#fields;
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]!;
    return null;
  }

  with(changes: Partial<HttpRequestInit>): HttpRequest {
    return new HttpRequest(changes as HttpRequestInit, this);
  }

  /** A copy with `name` set to `value` (`null` removes it). Throws a `TypeError` where `Headers` would. */
  withHeader(name: string, value: string | null): HttpRequest {
    if (this.#headers !== undefined) {
      const headers = new Headers(this.#headers);
      if (value === null) headers.delete(name);
      else headers.set(name, value);
      return this.with({ headers });
    }
    // Checked before lower-casing (which turns some non-ASCII letters into ASCII ones), and as strings,
    // as `Headers` takes them.
    const given = String(name);
    if (!HEADER_NAME.test(given)) throw new TypeError('invalid header name');
    const key = given.toLowerCase();
    let normalized: string | undefined;
    if (value !== null) {
      value = String(value);
      normalized =
        isSpace(value.charCodeAt(0)) || isSpace(value.charCodeAt(value.length - 1))
          ? value.replace(EDGE_SPACE, '')
          : value;
      // The message names neither the header's value nor its name's value: a credential may be either.
      if (BAD_VALUE.test(normalized)) throw new TypeError('invalid header value');
    }
    // Sized exactly: grown by push, a two-field array (the credential alone) would hold room for 17.
    // The copy is held for the whole call.
    const old = this.#fields;
    let kept = 0;
    for (let i = 0; i < old.length; i += 2) if (old[i] !== key) kept += 2;
    const fields = new Array<string>(kept + (normalized === undefined ? 0 : 2));
    let at = 0;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] === key) continue;
      fields[at++] = old[i]!;
      fields[at++] = old[i + 1]!;
    }
    if (normalized !== undefined) {
      fields[at++] = key;
      fields[at] = normalized;
    }
    const copy = new HttpRequest(NO_CHANGES as HttpRequestInit, this);
    copy.#fields = fields;
    return copy;
  }
}

/** True when the body can go on the wire again as it is (or by calling its factory). */
export function isReplayable(body: RequestBody): boolean {
  return (
    body === null ||
    typeof body === 'string' ||
    typeof body === 'function' ||
    body instanceof Uint8Array ||
    body instanceof ArrayBuffer ||
    body instanceof URLSearchParams ||
    body instanceof FormData ||
    body instanceof Blob
  );
}

/** Milliseconds left of an attempt's time limit (negative once it has passed). */
export function remainingMs(plan: AttemptTimeout, now = performance.now()): number {
  return plan.end === undefined ? plan.ms : plan.end - now;
}
