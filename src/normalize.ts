import { AbortError, NetworkError, ParseError, SluiceError, TimeoutError } from './errors.js';
import { redactText } from './redact.js';
import type { AttemptTimeout } from './request.js';

export interface RequestMeta {
  readonly method: string;
  readonly url: string;
  readonly timeout?: AttemptTimeout | undefined;
}

const UNDICI_TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Codes undici and Node use for a connection that broke, mapped to the system code users search for. */
const NETWORK_CODES: Record<string, string> = {
  UND_ERR_SOCKET: 'ECONNRESET',
  UND_ERR_CONNECT_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_CLOSED: 'ECONNRESET',
  UND_ERR_DESTROYED: 'ECONNRESET',
  UND_ERR_HEADERS_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_BODY_TIMEOUT: 'ETIMEDOUT',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'ECONNRESET',
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: 'ERR_CONTENT_LENGTH',
};

/** undici's codes for a request it refused to send, or a closed client: neither a network failure nor retryable. */
const USAGE_CODES: Record<string, string> = {
  UND_ERR_INVALID_ARG: 'ERR_INVALID_REQUEST',
  UND_ERR_NOT_SUPPORTED: 'ERR_INVALID_REQUEST',
  UND_ERR_CLOSED: 'ERR_CLIENT_CLOSED',
  UND_ERR_DESTROYED: 'ERR_CLIENT_CLOSED',
};

function codeOf(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR' && code !== 'ERR_INVALID_ARG_TYPE') {
      return NETWORK_CODES[code] ?? code;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Whatever a transport, a body read or a hook threw, as a SluiceError. A raw message is never copied:
 * Node's header errors quote the header value, and the cause is kept for debugging only.
 */
export function toSluiceError(error: unknown, meta: RequestMeta, signal?: AbortSignal): SluiceError {
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
  const code = codeOf(error);
  if (code && code !== 'ERR_INVALID_CHAR' && code !== 'ERR_INVALID_HTTP_TOKEN' && !code.startsWith('ERR_INVALID')) {
    return new NetworkError(`network error ${code}`, {
      code,
      retryable: true,
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
