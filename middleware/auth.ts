import { builtIn } from '../src/compose.js';
import { ConfigError } from '../src/errors.js';
import type { Placement, StaticCredential } from '../src/grants.js';
import { placementOf as ownPlacement } from '../src/own.js';
import type { HttpRequest } from '../src/request.js';
import type { TokenSet } from '../src/token-set.js';
import type { TokenManager } from '../src/tokens.js';
import type { Middleware, Next } from '../src/types.js';

/**
 * A test for "may this URL receive the credential": true only when the exact origin (scheme, host, port)
 * of the final URL is one of `origins`. The common case is a string prefix check; anything unusual is
 * parsed, so `https://api.example.com@evil.test/` and `https://api.example.com.evil.test/` never pass.
 */
export function originGuard(origins: readonly string[]): (url: string) => boolean {
  const allowed = new Set<string>();
  for (const origin of origins) {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      throw new ConfigError(`auth origin ${JSON.stringify(origin)} is not an absolute URL`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
      throw new ConfigError('auth origins must be http(s)');
    allowed.add(parsed.origin);
  }
  return function isAllowed(url) {
    // The common case without parsing: "scheme://authority/..." whose authority part is an allowed
    // origin as written (one lookup, whatever the number of origins).
    if (allowed.has(authorityOf(url))) return true;
    try {
      return allowed.has(new URL(url).origin);
    } catch {
      return false;
    }
  };
}

// The "scheme://authority" part of the URL checked last: one request's URL goes through several guards
// in a row (the client's, bindCredentials, auth), and each would otherwise cut the same string again.
let lastURL = '';
let lastAuthority = '';

function authorityOf(url: string): string {
  if (url === lastURL) return lastAuthority;
  const path = url.indexOf('/', url.indexOf('://') + 3);
  const authority = path > 0 ? url.slice(0, path) : '';
  // A URL with a query is not kept: a credential placed in the query must not outlive its request here.
  if (!url.includes('?')) {
    lastURL = url;
    lastAuthority = authority;
  }
  return authority;
}

/** What goes out for `value`: the query parameter's value, or the header's (`<scheme> <value>`). */
function placedValue(placement: Placement, value: string): string {
  if (Object.hasOwn(placement, 'query')) return value;
  const { scheme } = placement as { scheme?: string };
  return scheme ? `${scheme} ${value}` : value;
}

/** `request` with `placed` (see `placedValue`) in the placement's query parameter or header. */
function place(request: HttpRequest, placement: Placement, placed: string): HttpRequest {
  if (Object.hasOwn(placement, 'query')) {
    const url = new URL(request.url);
    url.searchParams.set((placement as { query: string }).query, placed);
    return request.with({ url: url.href });
  }
  return request.withHeader((placement as { header: string }).header, placed);
}

export interface AuthMiddlewareOptions {
  /** A token manager (OAuth, login, cookie session) or a static credential (API key, Basic, PAT). */
  credential: TokenManager | StaticCredential;
  /** Origins that may receive the credential: the API's, plus any you list. Required. */
  origins: readonly string[];
}

/**
 * Attaches the credential to requests whose final URL is on an allowed origin, and records on the call
 * which token generation went out, for the refresh middleware. `auth: false` on a call sends none.
 */
export function auth({ credential, origins }: AuthMiddlewareOptions): Middleware {
  if (!origins || origins.length === 0) throw new ConfigError('auth: origins must list at least the API origin');
  const isAllowed = originGuard(origins);
  if ('static' in credential) {
    const placement = ownPlacement(credential.placement);
    const placed = placedValue(placement, credential.value);
    return builtIn(function attachStatic(request, next) {
      if (request.options.auth === false || !isAllowed(request.url)) return next(request);
      return next(place(request, placement, placed));
    });
  }
  const manager = credential;
  const fixed = manager.grant.placement && ownPlacement(manager.grant.placement);
  const byType = new Map<string, Placement>();
  const placementOf = (tokenType: string): Placement => {
    if (fixed) return fixed;
    let placement = byType.get(tokenType);
    if (!placement) {
      placement = { header: 'authorization', scheme: tokenType };
      byType.set(tokenType, placement);
    }
    return placement;
  };
  const grant = manager.grant;
  const rotates = typeof grant.rotate === 'function' && Object.hasOwn(grant, 'rotate');
  // The value that goes out, made once per token set rather than once per request (each request in
  // flight would hold its own copy of the same string). Weakly: a replaced token set is not kept here.
  const placed = new WeakMap<TokenSet, string>();
  const send = (request: HttpRequest, next: Next, tokens: TokenSet) => {
    request.state.generation = tokens.generation;
    const placement = placementOf(tokens.tokenType);
    let value = placed.get(tokens);
    if (value === undefined) {
      value = placedValue(placement, tokens.accessToken);
      placed.set(tokens, value);
    }
    return next(place(request, placement, value));
  };
  // The response may hand over the credential's next value (a session cookie the server rotated).
  const sendAndRotate = async (request: HttpRequest, next: Next, tokens: TokenSet) => {
    const response = await send(request, next, tokens);
    const rotated = grant.rotate?.(tokens, response.headers);
    if (rotated) manager.rotated(tokens, rotated);
    return response;
  };
  const sendWith = rotates ? sendAndRotate : send;
  // No async frame while a token is at hand (nearly every call): its promise is the transport's own.
  return builtIn(function attachToken(request, next) {
    if (request.options.auth === false || !isAllowed(request.url)) return next(request);
    try {
      const tokens = manager.current();
      if (tokens) return sendWith(request, next, tokens);
    } catch (error) {
      return Promise.reject(error);
    }
    return manager.token(request).then((fetched) => sendWith(request, next, fetched));
  });
}
