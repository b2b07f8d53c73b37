import { builtIn } from '../src/compose.js';
import { isSecretName } from '../src/redact.js';
import type { Middleware } from '../src/types.js';
import { originGuard } from './auth.js';

export interface BindCredentialsOptions {
  /** Origins that may receive a credential: the baseURL's and every `auth.origins`. */
  origins: readonly string[];
  /** Header and query names that carry a credential besides the usual ones (a static key's placement, names you mark secret). */
  names?: readonly string[];
}

/**
 * Binds credentials that come from headers or query parameters (client-level or per call) to the
 * allowed origins, on every hop: a request to any other origin leaves without Authorization, Cookie,
 * Proxy-Authorization, API-key headers, secret-named query parameters and the names you list. On an
 * allowed origin (the common case) this costs one string comparison.
 */
export function bindCredentials({ origins, names = [] }: BindCredentialsOptions): Middleware {
  const isAllowed = originGuard(origins);
  const extra = new Set(names.filter((name) => typeof name === 'string').map((name) => name.toLowerCase()));
  const carries = (name: string) => extra.has(name.toLowerCase()) || isSecretName(name);
  return builtIn(function bindToOrigins(request, next) {
    if (isAllowed(request.url)) return next(request);
    let headers: Headers | undefined;
    for (const [name] of request.headers) {
      if (!carries(name)) continue;
      headers ??= new Headers(request.headers);
      headers.delete(name);
    }
    let url = request.url;
    if (url.includes('?')) {
      const parsed = new URL(url);
      for (const name of [...parsed.searchParams.keys()]) if (carries(name)) parsed.searchParams.delete(name);
      url = parsed.href;
    }
    if (!headers && url === request.url) return next(request);
    return next(request.with({ url, ...(headers ? { headers } : {}) }));
  });
}
