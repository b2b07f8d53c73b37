import { AuthError, NetworkError, type SluiceError, TimeoutError } from './errors.js';
import { toWebResponse } from './fetch.js';
import { toSluiceError } from './normalize.js';
import { own } from './own.js';
import { HttpRequest, type RequestBody, resolveURL } from './request.js';
import { bytesSource, HttpResponse, parseRetryAfter } from './response.js';
import { sleep } from './timers.js';
import type { Transport } from './types.js';

/** A fetch for token requests: never through the auth chain, never following redirects. */
export type TokenFetch = (url: string, init?: RequestInit) => Promise<Response>;

export interface TokenFetchOptions {
  /** Largest token response accepted, in bytes. @default 65536 */
  maxBytes?: number | undefined;
  /** Attempts on a network error or 5xx. @default 3 */
  attempts?: number | undefined;
  /** Per-attempt timeout in ms. @default 10000 */
  timeout?: number | undefined;
  /** Only retry failures where the request surely did not reach the server (refresh tokens). */
  connectFailuresOnly?: boolean | undefined;
  /** Longest `Retry-After` of a 503 waited out here; a longer one ends the request as rate limited. @default 5000 */
  maxRetryAfter?: number | undefined;
  /** Relative URLs (a login path) are resolved against this, as the client resolves its own. */
  baseURL?: string | undefined;
  /** The client's default headers: added (under the request's own) to requests for the API's origins only. */
  headers?: readonly (readonly [string, string])[] | undefined;
  /** Which URLs may receive `headers`: the layer's origins. */
  sendHeadersTo?: ((url: string) => boolean) | undefined;
}

/** True for failures that say the server did not process the request: it can be sent again later. */
export function notProcessed(error: unknown): boolean {
  if (error instanceof NetworkError) return !error.sent;
  if (!(error instanceof AuthError) || error.status === undefined) return false;
  if (error.status === 429 || error.status === 503) return true;
  return error.status >= 400 && error.status < 500 && error.oauthError !== 'invalid_grant';
}

/** True when a token request may have reached the server although no answer came back. */
export function mayHaveBeenSent(error: unknown): boolean {
  if (error instanceof TimeoutError) return true;
  if (error instanceof NetworkError) return error.sent;
  return false;
}

async function readCapped(response: HttpResponse, maxBytes: number): Promise<Uint8Array> {
  const bytes = await response.bytesUpTo(maxBytes);
  if (bytes === undefined) {
    throw new AuthError(`token response is larger than ${maxBytes} bytes`, { code: 'AUTH_RESPONSE_TOO_LARGE' });
  }
  return bytes;
}

/**
 * Sends token requests straight to the transport: retried on network errors and 5xx (a bounded number
 * of times, with a short backoff), never on 4xx, never redirected, body capped and buffered.
 */
export function createTokenFetch(transport: Transport, given: TokenFetchOptions = {}): TokenFetch {
  const options = own(given);
  const {
    maxBytes = 64 * 1024,
    attempts = 3,
    timeout = 10_000,
    connectFailuresOnly = false,
    maxRetryAfter = 5000,
    baseURL,
    headers: defaults = [],
    sendHeadersTo,
  } = options;
  return async function tokenFetch(given, init = {}) {
    const method = (init.method ?? 'GET').toUpperCase();
    const url = resolveURL(String(given), baseURL);
    if (!/^https?:\/\//i.test(url)) {
      throw new AuthError('a token request needs an absolute http(s) URL, or a path and the client baseURL', {
        code: 'AUTH_BAD_URL',
      });
    }
    const extra = defaults.length > 0 && sendHeadersTo?.(url) ? defaults : undefined;
    for (let attempt = 1; ; attempt++) {
      // Closed (or aborted) between attempts: nothing more is sent.
      if (init.signal?.aborted) throw toSluiceError(init.signal.reason, { method, url }, init.signal);
      let wait: number | undefined;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new TimeoutError('attempt', timeout, { method, url })), timeout);
      timer.unref();
      const onAbort = () => controller.abort(init.signal?.reason);
      init.signal?.addEventListener('abort', onAbort, { once: true });
      const headers = new Headers(init.headers);
      if (extra) for (const [name, value] of extra) if (!headers.has(name)) headers.set(name, value);
      const request = new HttpRequest({
        method,
        url,
        headers,
        body: (init.body as RequestBody | undefined) ?? null,
        signal: controller.signal,
      });
      try {
        const response = await transport.send(request);
        if (response.status >= 300 && response.status < 400) {
          await response.discard();
          throw new AuthError(
            `token endpoint answered ${response.status} (redirect); token requests never follow redirects`,
            {
              code: 'AUTH_REDIRECT_REFUSED',
              status: response.status,
              method,
              url,
            },
          );
        }
        if (response.status === 429 || response.status === 503) {
          wait = parseRetryAfter(response.header('retry-after'));
          // The server says when to come back. A 429, or a wait too long to hold this request for, ends
          // the request: the token manager pauses the credential (for the whole fleet) until then.
          if (response.status === 429 || (wait !== undefined && (wait > maxRetryAfter || attempt >= attempts))) {
            await response.discard();
            throw new AuthError(`token endpoint answered ${response.status}: rate limited`, {
              code: 'AUTH_RATE_LIMITED',
              status: response.status,
              retryAfter: wait,
              retryable: true,
              method,
              url,
            });
          }
        }
        const bytes = await readCapped(response, maxBytes);
        if (response.status < 500 || attempt >= attempts || (connectFailuresOnly && response.status !== 503)) {
          return toWebResponse(
            new HttpResponse({
              status: response.status,
              statusText: response.statusText,
              headers: response.headers,
              url,
              body: bytesSource(bytes),
              request,
            }),
          );
        }
      } catch (error) {
        const failure: SluiceError = toSluiceError(error, request, controller.signal);
        if (failure instanceof AuthError || init.signal?.aborted) throw failure;
        if (connectFailuresOnly && mayHaveBeenSent(failure)) throw failure;
        if (!failure.retryable || attempt >= attempts) throw failure;
      } finally {
        clearTimeout(timer);
        init.signal?.removeEventListener('abort', onAbort);
      }
      // A 503 with Retry-After: as long as the server asked. Another 5xx or a network failure: a little
      // (full jitter). Then try again.
      const delay = wait ?? Math.min(2000, 100 * 2 ** attempt * Math.random());
      await sleep(delay, init.signal ?? undefined);
    }
  };
}
