import { AbortError, NetworkError, ParseError, SluiceError, TimeoutError } from './errors.js';
import { redactText } from './redact.js';
import type { AttemptTimeout } from './request.js';
import type { AbortLike } from './response.js';

export interface RequestMeta {
  readonly method: string;
  readonly url: string;
  readonly timeout?: AttemptTimeout | undefined;
}

const UNDICI_TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * Codes undici and Node use for a failed exchange, as the stable code Sluice reports and whether the
 * request may have reached the server. `sent: false` (nothing left this machine: refused, no such
 * host, no route, connect timeout, a certificate refused during the handshake) is retried for every
 * method; anything else only for idempotent requests.
 */
const NETWORK_CODES: Record<string, { code: string; sent: boolean; retryable?: false }> = {
  ECONNREFUSED: { code: 'ECONNREFUSED', sent: false },
  ENOTFOUND: { code: 'ENOTFOUND', sent: false },
  EAI_AGAIN: { code: 'EAI_AGAIN', sent: false },
  EHOSTUNREACH: { code: 'EHOSTUNREACH', sent: false },
  ENETUNREACH: { code: 'ENETUNREACH', sent: false },
  EADDRNOTAVAIL: { code: 'EADDRNOTAVAIL', sent: false },
  UND_ERR_CONNECT_TIMEOUT: { code: 'ECONNECT_TIMEOUT', sent: false },
  UND_ERR_SOCKET: { code: 'ECONNRESET', sent: true },
  UND_ERR_CLOSED: { code: 'ECONNRESET', sent: true },
  UND_ERR_DESTROYED: { code: 'ECONNRESET', sent: true },
  UND_ERR_HEADERS_TIMEOUT: { code: 'ETIMEDOUT', sent: true },
  UND_ERR_BODY_TIMEOUT: { code: 'ETIMEDOUT', sent: true },
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: { code: 'ERR_CONTENT_LENGTH_MISMATCH', sent: true },
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: { code: 'ERR_CONTENT_LENGTH', sent: true },
  UND_ERR_HEADERS_OVERFLOW: { code: 'ERR_HEADERS_OVERFLOW', sent: true },
  UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE: { code: 'ERR_RESPONSE_TOO_LARGE', sent: true, retryable: false },
  // llhttp refused the response (a garbage status line, a bad chunk, a bad Content-Length).
  HTTPParserError: { code: 'ERR_BAD_RESPONSE', sent: true },
};

/** Node's certificate verification codes: the handshake failed before the request was written. */
const TLS_REFUSED = /^(?:CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_TLS_CERT|HOSTNAME_MISMATCH|ERR_SSL_)/;

/** undici's codes for a request it refused to send, or a closed client: neither a network failure nor retryable. */
const USAGE_CODES: Record<string, string> = {
  UND_ERR_INVALID_ARG: 'ERR_INVALID_REQUEST',
  UND_ERR_NOT_SUPPORTED: 'ERR_INVALID_REQUEST',
  UND_ERR_CLOSED: 'ERR_CLIENT_CLOSED',
  UND_ERR_DESTROYED: 'ERR_CLIENT_CLOSED',
};

interface NetworkFailure {
  code: string;
  sent: boolean;
  retryable: boolean;
}

/** The first code (or undici parser error) in the cause chain, classified. */
function classify(error: unknown): NetworkFailure | undefined {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const { code, name } = e as { code?: unknown; name?: unknown };
    const known =
      NETWORK_CODES[typeof code === 'string' ? code : ''] ??
      (name === 'HTTPParserError' ? NETWORK_CODES.HTTPParserError : undefined);
    if (known) return { code: known.code, sent: known.sent, retryable: known.retryable ?? true };
    if (typeof code === 'string' && code !== 'UND_ERR' && code !== 'ERR_INVALID_ARG_TYPE') {
      if (TLS_REFUSED.test(code)) return { code, sent: false, retryable: false };
      if (code.startsWith('ERR_INVALID')) return undefined;
      return { code, sent: true, retryable: true };
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Whatever a transport, a body read or a hook threw, as a SluiceError. A raw message is never copied:
 * Node's header errors quote the header value, and the cause is kept for debugging only.
 */
export function toSluiceError(error: unknown, meta: RequestMeta, signal?: AbortLike): SluiceError {
  if (error instanceof SluiceError) return error;
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof SluiceError) return reason;
    return new AbortError({ method: meta.method, url: meta.url, cause: reason });
  }
  const rawCode = (error as { code?: unknown } | null)?.code;
  if (meta.timeout && typeof rawCode === 'string' && UNDICI_TIMEOUTS.has(rawCode)) {
    return new TimeoutError(meta.timeout.kind, meta.timeout.limit, {
      method: meta.method,
      url: meta.url,
      cause: error,
    });
  }
  const usage = typeof rawCode === 'string' ? USAGE_CODES[rawCode] : undefined;
  if (usage) {
    return new SluiceError(usage === 'ERR_CLIENT_CLOSED' ? 'the client is closed' : 'invalid request', {
      code: usage,
      method: meta.method,
      url: meta.url,
      cause: error,
    });
  }
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'AbortError') return new AbortError({ method: meta.method, url: meta.url, cause: error });
  const failure = classify(error);
  if (failure) {
    return new NetworkError(`network error ${failure.code}${failure.sent ? '' : ' (nothing was sent)'}`, {
      ...failure,
      method: meta.method,
      url: meta.url,
      cause: error,
    });
  }
  if (error instanceof TypeError && /header|token|character/i.test(error.message)) {
    // Node's message quotes the offending header value, which may be a credential: keep neither.
    return new SluiceError('invalid request header (name or value rejected)', {
      code: 'ERR_INVALID_HEADER',
      method: meta.method,
      url: meta.url,
    });
  }
  if (error instanceof TypeError && error.message === 'fetch failed') {
    return new NetworkError('network error', {
      code: 'ENETWORK',
      retryable: true,
      method: meta.method,
      url: meta.url,
      cause: error,
    });
  }
  return new SluiceError('request failed', { code: 'ERR_REQUEST', method: meta.method, url: meta.url, cause: error });
}

const SNIPPET_LENGTH = 120;

/** Strict JSON parsing: an empty body is `undefined`, invalid JSON a `ParseError` with a redacted snippet. */
export function parseJson(text: string, meta: RequestMeta): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    // V8's message quotes the body; the snippet is cut short and redacted instead.
    const snippet = redactText(text.slice(0, SNIPPET_LENGTH));
    throw new ParseError(`invalid JSON in response body (${text.length} bytes)`, snippet, {
      method: meta.method,
      url: meta.url,
    });
  }
}
