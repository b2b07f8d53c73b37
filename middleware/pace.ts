import { builtIn } from '../src/compose.js';
import { httpErrorFor } from '../src/errors.js';
import { HttpResponse } from '../src/response.js';
import type { Middleware } from '../src/types.js';
import { PACED, retryAfterMs } from './retry.js';

export interface PaceOptions {
  /**
   * `'wait'`: a call to an origin whose limit is spent until T is answered, without a request, as the
   * server would answer it (429 with `Retry-After`), so the retry policy waits it out within the
   * call's budget and `maxRetryAfter`. `'fail'`: it fails at once with `RateLimitError` (code
   * `RATE_LIMIT_PACED`, not retried).
   */
  mode: 'wait' | 'fail';
  now?: () => number;
}

/** `https://host:port` of an absolute URL, without parsing it. */
function originOf(url: string): string {
  const end = url.indexOf('/', url.indexOf('//') + 2);
  return end === -1 ? url : url.slice(0, end);
}

/**
 * Client-side pacing: when an answer says the limit is spent (remaining 0 with a reset, a 429, or a
 * `Retry-After`), later calls to that origin do not spend a request before the reset.
 */
export function pace({ mode, now = Date.now }: PaceOptions): Middleware {
  const until = new Map<string, number>();
  return builtIn(async function paced(request, next) {
    const origin = originOf(request.url);
    const blocked = until.get(origin);
    if (blocked !== undefined) {
      const wait = blocked - now();
      if (wait > 0) {
        const seconds = String(Math.ceil(wait / 1000));
        const headers = new Headers({ 'retry-after': seconds, 'x-sluice-paced': 'true' });
        if (mode === 'fail') {
          throw httpErrorFor({
            status: 429,
            statusText: 'Too Many Requests (paced by the client: nothing was sent)',
            headers,
            body: undefined,
            method: request.method,
            url: request.url,
            retryAfter: wait,
            code: 'RATE_LIMIT_PACED',
            retryable: false,
          });
        }
        const answer = new HttpResponse({
          status: 429,
          statusText: 'Too Many Requests',
          headers,
          url: request.url,
          body: null,
          request,
        });
        PACED.add(answer);
        return answer;
      }
      until.delete(origin);
    }
    const response = await next(request);
    if (response.status >= 400 || response.headers.has('x-ratelimit-remaining') || response.headers.has('ratelimit')) {
      const wait = retryAfterMs(response, now());
      if (wait !== undefined && wait > 0) {
        // Bounded: a client that meets many rate-limited hosts forgets those whose reset has passed.
        if (until.size >= 256) for (const [key, at] of until) if (at <= now()) until.delete(key);
        if (until.size < 4096) until.set(origin, now() + wait);
      }
    }
    return response;
  });
}
