import { redactUrl } from './redact.js';

/** What every Sluice error may say about the request it belongs to. */
export interface ErrorDetails {
  /** A stable machine-readable code, e.g. `ECONNRESET`, `HTTP_503`, `TIMEOUT_ATTEMPT`. */
  code?: string;
  /** Whether sending the same request again could succeed. */
  retryable?: boolean;
  method?: string;
  /** The request URL; it is redacted before it is stored. */
  url?: string;
  /** How many times the request went on the wire. */
  attempts?: number;
  cause?: unknown;
}

/** The root of everything Sluice throws on purpose. */
export class SluiceError extends Error {
  override name = 'SluiceError';
  readonly code: string;
  readonly retryable: boolean;
  readonly method: string | undefined;
  /** Redacted: no credentials, no secret query parameters. */
  readonly url: string | undefined;
  attempts: number;
  /**
   * Where your code made the call (stack frames), set by the client when the error reaches you: a
   * failure shared by many calls (a token refresh) was created far from any of them. Also appended to
   * `stack` when the stack does not already reach your code.
   */
  declare callSite: string | undefined;

  constructor(message: string, details: ErrorDetails = {}) {
    const url = details.url === undefined ? undefined : redactUrl(details.url);
    const prefix = details.method && url ? `[${details.method}] ${url}: ` : '';
    super(prefix + message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = details.code ?? 'ERR_SLUICE';
    this.retryable = details.retryable ?? false;
    this.method = details.method;
    this.url = url;
    this.attempts = details.attempts ?? 0;
  }

  /** A plain, secret-free summary; `cause` is reduced to its name and code. */
  toJSON(): Record<string, unknown> {
    const json: Record<string, unknown> = {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      method: this.method,
      url: this.url,
      attempts: this.attempts,
    };
    for (const [key, value] of Object.entries(this.extraJSON())) json[key] = value;
    const cause = this.cause as { name?: unknown; code?: unknown } | undefined;
    if (cause && typeof cause === 'object') json.cause = { name: cause.name, code: cause.code };
    return json;
  }

  protected extraJSON(): Record<string, unknown> {
    return {};
  }
}

export interface HttpErrorDetails extends ErrorDetails {
  status: number;
  statusText: string;
  headers: Headers;
  /** The parsed response body (JSON when it was JSON, else text), if any. */
  body?: unknown;
}

/** The server answered with a status of 400 or above. */
export class HttpError extends SluiceError {
  override name = 'HttpError';
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  readonly body: unknown;
  /** The server's request id (`x-request-id`, `x-correlation-id`, ...), when it sent one. */
  readonly requestId: string | undefined;

  constructor(details: HttpErrorDetails, message = `${details.status} ${details.statusText}`.trimEnd()) {
    super(message, {
      code: `HTTP_${details.status}`,
      retryable: RETRYABLE_STATUS.has(details.status),
      ...details,
    });
    this.status = details.status;
    this.statusText = details.statusText;
    this.headers = details.headers;
    this.body = details.body;
    this.requestId = requestIdOf(details.headers);
    // Loggers that copy an error's own fields (pino's serializer does) must not pick up Set-Cookie
    // headers or a body that echoes what was sent: both stay readable, but not enumerable.
    Object.defineProperty(this, 'headers', { enumerable: false });
    Object.defineProperty(this, 'body', { enumerable: false });
  }

  protected override extraJSON(): Record<string, unknown> {
    return { status: this.status, requestId: this.requestId };
  }
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const REQUEST_ID_HEADERS = ['x-request-id', 'x-correlation-id', 'request-id', 'x-amzn-requestid', 'cf-ray'];

function requestIdOf(headers: Headers): string | undefined {
  for (const name of REQUEST_ID_HEADERS) {
    const value = headers.get(name);
    if (value) return value;
  }
  return undefined;
}

export class BadRequestError extends HttpError {
  override name = 'BadRequestError';
}
export class UnauthorizedError extends HttpError {
  override name = 'UnauthorizedError';
}
export class ForbiddenError extends HttpError {
  override name = 'ForbiddenError';
}
export class NotFoundError extends HttpError {
  override name = 'NotFoundError';
}
export class ConflictError extends HttpError {
  override name = 'ConflictError';
}
/** 429. `retryAfter` is the server's requested wait in milliseconds, when it gave one. */
export class RateLimitError extends HttpError {
  override name = 'RateLimitError';
  readonly retryAfter: number | undefined;
  constructor(details: HttpErrorDetails & { retryAfter?: number | undefined }) {
    super(details);
    this.retryAfter = details.retryAfter;
  }
  protected override extraJSON(): Record<string, unknown> {
    return { ...super.extraJSON(), retryAfter: this.retryAfter };
  }
}
/** Any 5xx. */
export class ServerError extends HttpError {
  override name = 'ServerError';
}
export class ServiceUnavailableError extends ServerError {
  override name = 'ServiceUnavailableError';
}

/**
 * The exchange failed: refused, reset, DNS, TLS, a response the HTTP parser refused. `code` is stable:
 * the system code (ECONNREFUSED, ECONNRESET, ...) or Sluice's (ERR_BAD_RESPONSE, ERR_HEADERS_OVERFLOW,
 * ERR_CONTENT_LENGTH_MISMATCH...).
 */
export class NetworkError extends SluiceError {
  override name = 'NetworkError';
  /**
   * `false` when the request surely never left this machine (refused, DNS, no route, connect timeout,
   * certificate refused): it is safe to send again whatever the method.
   */
  readonly sent: boolean;
  constructor(message: string, details: ErrorDetails & { sent?: boolean } = {}) {
    super(message, details);
    this.sent = details.sent ?? true;
  }
  protected override extraJSON(): Record<string, unknown> {
    return { sent: this.sent };
  }
}

/** An attempt took longer than `timeout`, or the whole call longer than `deadline`. */
export class TimeoutError extends SluiceError {
  override name = 'TimeoutError';
  readonly kind: 'attempt' | 'total';
  constructor(kind: 'attempt' | 'total', ms: number, details: ErrorDetails = {}) {
    super(`${kind === 'attempt' ? 'attempt timed out' : 'deadline exceeded'} after ${ms} ms`, {
      code: kind === 'attempt' ? 'TIMEOUT_ATTEMPT' : 'TIMEOUT_TOTAL',
      retryable: kind === 'attempt',
      ...details,
    });
    this.kind = kind;
  }
  protected override extraJSON(): Record<string, unknown> {
    return { kind: this.kind };
  }
}

/** The caller aborted through its signal. */
export class AbortError extends SluiceError {
  override name = 'AbortError';
  constructor(details: ErrorDetails = {}) {
    super('aborted by the caller', { code: 'ABORTED', ...details });
  }
}

/** The body was not what its content type promised. `snippet` is short and redacted. */
export class ParseError extends SluiceError {
  override name = 'ParseError';
  readonly snippet: string;
  constructor(message: string, snippet: string, details: ErrorDetails = {}) {
    super(message, { code: 'PARSE_ERROR', ...details });
    this.snippet = snippet;
  }
  protected override extraJSON(): Record<string, unknown> {
    return { snippet: this.snippet };
  }
}

export interface AuthErrorDetails extends ErrorDetails {
  /** The OAuth error code (`invalid_grant`, `invalid_client`, ...) or the WWW-Authenticate error. */
  oauthError?: string | undefined;
  oauthErrorDescription?: string | undefined;
  status?: number | undefined;
  /** How long the token endpoint asked us to wait (429/503 `Retry-After`), in ms. */
  retryAfter?: number | undefined;
}

/** A token could not be obtained, or the API kept refusing it. Never carries a secret. */
export class AuthError extends SluiceError {
  override name = 'AuthError';
  readonly oauthError: string | undefined;
  readonly oauthErrorDescription: string | undefined;
  readonly status: number | undefined;
  readonly retryAfter: number | undefined;
  constructor(message: string, details: AuthErrorDetails = {}) {
    super(message, {
      code: details.oauthError
        ? `AUTH_${details.oauthError
            .slice(0, 64)
            .toUpperCase()
            .replace(/[^A-Z0-9]+/g, '_')}`
        : 'AUTH_FAILED',
      ...details,
    });
    this.oauthError = details.oauthError;
    this.oauthErrorDescription = details.oauthErrorDescription;
    this.status = details.status;
    this.retryAfter = details.retryAfter;
  }
  protected override extraJSON(): Record<string, unknown> {
    return {
      oauthError: this.oauthError,
      oauthErrorDescription: this.oauthErrorDescription,
      status: this.status,
      retryAfter: this.retryAfter,
    };
  }
}

/** An option is invalid; thrown when the client or middleware is created. */
/** A call made after `close()`: the client's connections and token requests are gone. */
export class ClosedError extends SluiceError {
  override name = 'ClosedError';
  constructor(details: ErrorDetails = {}) {
    super('the client is closed: create a new one to send more requests', { code: 'ERR_CLIENT_CLOSED', ...details });
  }
}

export class ConfigError extends SluiceError {
  override name = 'ConfigError';
  constructor(message: string) {
    super(message, { code: 'CONFIG' });
  }
}

/** A one-shot body (a stream) would have to be sent a second time. */
export class BodyNotReplayableError extends SluiceError {
  override name = 'BodyNotReplayableError';
  constructor(details: ErrorDetails = {}) {
    super('the request body is a one-shot stream and cannot be sent again; pass a body factory or set bufferBody', {
      code: 'BODY_NOT_REPLAYABLE',
      ...details,
    });
  }
}

/** The shared token store or lock could not be reached within its deadline. */
export class StoreUnavailableError extends SluiceError {
  override name = 'StoreUnavailableError';
  constructor(message: string, details: ErrorDetails = {}) {
    super(message, { code: 'STORE_UNAVAILABLE', retryable: true, ...details });
  }
}

/** True for any Sluice error, also one thrown by another copy of the package. */
const ERROR_NAMES = new Set([
  'SluiceError',
  'HttpError',
  'BadRequestError',
  'UnauthorizedError',
  'ForbiddenError',
  'NotFoundError',
  'ConflictError',
  'RateLimitError',
  'ServerError',
  'ServiceUnavailableError',
  'NetworkError',
  'TimeoutError',
  'AbortError',
  'ParseError',
  'AuthError',
  'ConfigError',
  'BodyNotReplayableError',
  'StoreUnavailableError',
]);

/** True for any Sluice error, also one thrown by another copy of the package (matched on name and shape). */
export function isSluiceError(error: unknown): error is SluiceError {
  if (error instanceof SluiceError) return true;
  return (
    error instanceof Error &&
    ERROR_NAMES.has(error.name) &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { retryable?: unknown }).retryable === 'boolean'
  );
}

export function isHttpError(error: unknown): error is HttpError {
  return (
    error instanceof HttpError ||
    (isSluiceError(error) && typeof (error as { status?: unknown }).status === 'number' && 'headers' in error)
  );
}

const STATUS_CLASSES: Record<number, typeof HttpError> = {
  400: BadRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
  503: ServiceUnavailableError,
};

/** The error class for a status: 429 is built by the caller, which knows `retryAfter`. */
export function httpErrorFor(details: HttpErrorDetails & { retryAfter?: number | undefined }): HttpError {
  if (details.status === 429) return new RateLimitError(details);
  const Class = STATUS_CLASSES[details.status] ?? (details.status >= 500 ? ServerError : HttpError);
  return new Class(details);
}
