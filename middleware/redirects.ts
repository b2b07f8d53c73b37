import { after, builtIn, forward } from '../src/compose.js';
import { BodyNotReplayableError, ConfigError, SluiceError } from '../src/errors.js';
import { own } from '../src/own.js';
import { isSecretName, redactUrl } from '../src/redact.js';
import type { HttpRequest } from '../src/request.js';
import { isReplayable } from '../src/request.js';
import type { HttpResponse } from '../src/response.js';
import type { Middleware, Next } from '../src/types.js';

export interface RedirectsOptions {
  /** Hops followed before failing with `TOO_MANY_REDIRECTS`. @default 10 */
  max?: number;
  /** Follow a 307/308 to another origin with the body; otherwise that hop fails with `REDIRECT_BODY_REFUSED`. @default false */
  crossOriginBody?: boolean;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location'];

/**
 * Follows redirects inside the chain (the transport never does), so every hop passes through the
 * middleware below, auth included. A hop to another origin, or from https to http, carries no
 * Authorization, Cookie, Proxy-Authorization or API-key header. 301/302 turn POST into GET and 303
 * turns anything but HEAD into GET, as fetch does; 307/308 keep the method and body, and to another
 * origin only with `crossOriginBody`.
 */
export function redirects(options: RedirectsOptions = {}): Middleware {
  const { max = 10, crossOriginBody = false } = own(options);
  if (!Number.isInteger(max) || max < 0)
    throw new ConfigError(`redirects.max must be a non-negative integer, got ${max}`);
  // One step for every call (made once here): it gets the call's request and next from the answer.
  const answered = (response: HttpResponse, request: HttpRequest, next: Next) =>
    isRedirect(response) ? follow(request, next, response) : response;
  // Not async: while the answer is awaited, a call holds a step on the answer, not a suspended function.
  return builtIn(function followRedirects(request, next) {
    return after(forward(next, request), next, answered, undefined, request, next);
  });

  async function follow(request: HttpRequest, next: Next, first: HttpResponse): Promise<HttpResponse> {
    let current = request;
    let origin: string | undefined;
    for (let hop = 0; ; hop++) {
      const response = hop === 0 ? first : await next(current);
      if (!isRedirect(response)) return response;
      const location = response.header('location') as string;
      await response.discard();
      const meta = { method: current.method, url: current.url, attempts: current.state.attempts };
      if (hop >= max) throw new SluiceError(`more than ${max} redirects`, { code: 'TOO_MANY_REDIRECTS', ...meta });
      let target: URL;
      try {
        target = new URL(location, current.url);
      } catch {
        throw new SluiceError('redirect to an invalid location', { code: 'BAD_REDIRECT', ...meta });
      }
      if (target.protocol !== 'https:' && target.protocol !== 'http:') {
        throw new SluiceError(`redirect to unsupported protocol ${target.protocol}`, { code: 'BAD_REDIRECT', ...meta });
      }
      let { method, body } = current;
      let headers = current.headers;
      const toGet =
        (response.status === 303 && method !== 'HEAD') ||
        ((response.status === 301 || response.status === 302) && method === 'POST');
      if (toGet) {
        method = 'GET';
        body = null;
        headers = new Headers(headers);
        for (const name of BODY_HEADERS) headers.delete(name);
      } else if (!isReplayable(body) && current.state.bodySent) {
        throw new BodyNotReplayableError(meta);
      }
      origin ??= new URL(request.url).origin;
      const crossOrigin = target.origin !== origin;
      if (crossOrigin && body !== null && !crossOriginBody) {
        throw new SluiceError(
          `a ${response.status} redirect to another origin (${redactUrl(target.origin)}) would re-send the request body; set crossOriginRedirectBody: true to allow it`,
          { code: 'REDIRECT_BODY_REFUSED', ...meta },
        );
      }
      if (crossOrigin) {
        headers = new Headers(headers);
        for (const [name] of [...headers]) if (isSecretName(name)) headers.delete(name);
      }
      current.events?.({
        type: 'redirect',
        requestId: current.state.id,
        method: current.method,
        url: redactUrl(current.url),
        status: response.status,
        location: redactUrl(target.href),
        crossOrigin,
      });
      current = current.with({ url: target.href, method, body, headers });
    }
  }
}

function isRedirect(response: HttpResponse): boolean {
  return REDIRECT_STATUSES.has(response.status) && response.header('location') !== null;
}
