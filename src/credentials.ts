import { type Cookie, parseCookie } from 'undici';
import { AuthError, ConfigError } from './errors.js';
import type { Grant, Placement, StaticCredential } from './grants.js';
import { checkNames, own, placementOf } from './own.js';

/** A fixed token: a personal access token, a service token. Sent as `Authorization: <scheme> <token>` by default. */
export function staticToken(token: string, options: { header?: string; scheme?: string } = {}): StaticCredential {
  const { header = 'authorization', scheme = header === 'authorization' ? 'Bearer' : undefined } = options;
  return makeStatic('staticToken', token, { header, scheme });
}

/** An API key in a header (e.g. `X-Vault-Token`, `X-API-Key`) or a query parameter. */
export function apiKey(
  key: string,
  placement: { header: string } | { query: string } = { header: 'x-api-key' },
): StaticCredential {
  return makeStatic('apiKey', key, placement);
}

/** HTTP Basic authentication. */
export function basicAuth(username: string, password: string): StaticCredential {
  if (typeof username !== 'string' || username.includes(':')) {
    throw new ConfigError('basicAuth: username is required and must not contain ":"');
  }
  if (typeof password !== 'string') throw new ConfigError('basicAuth: password must be a string');
  const value = Buffer.from(`${username}:${password}`).toString('base64');
  return makeStatic('basicAuth', value, { header: 'authorization', scheme: 'Basic' });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

function makeStatic(kind: string, value: string, given: Placement): StaticCredential {
  const placement = placementOf(given);
  if (typeof value !== 'string' || value.length === 0)
    throw new ConfigError(`${kind}: the credential must be a non-empty string`);
  if (CONTROL.test(value)) throw new ConfigError(`${kind}: the credential contains control characters`);
  if (!('query' in placement) && !/^[!#$%&'*+.^`|~\w-]+$/.test(placement.header)) {
    throw new ConfigError(`${kind}: header must be a valid header name`);
  }
  return Object.freeze({ static: true as const, value, placement });
}

type LoginBody = Record<string, unknown> | URLSearchParams;

export interface CookieSessionOptions {
  /** The login endpoint that answers with `Set-Cookie`: absolute, or a path under the client's `baseURL`. */
  loginURL: string;
  /** @default 'POST' */
  method?: string | undefined;
  /** Headers the login needs besides the client's defaults (e.g. `{ 'X-Requested-By': 'ThoughtSpot' }`). */
  headers?: Record<string, string> | undefined;
  /**
   * The login request body: an object is sent as JSON, URLSearchParams as a form. A function is called
   * at every login (a password read from a secret manager when it is needed).
   */
  body?: (LoginBody | (() => LoginBody | Promise<LoginBody>)) | undefined;
  /** Only keep these cookies (e.g. `['JSESSIONID']`). @default every cookie the login sets */
  cookies?: readonly string[] | undefined;
  /**
   * Names this session in the store key (host, user). No secrets. Required with a relative `loginURL` or
   * a `body` function. @default the login URL and the body's non-secret fields
   */
  id?: string | undefined;
  /** Session lifetime when the cookie carries no Max-Age/Expires, in ms. @default 30 minutes */
  lifetime?: number | undefined;
}

/** The expiry a cookie states, or undefined. */
function cookieExpiry(cookie: Cookie, now: number): number | undefined {
  if (cookie.maxAge !== undefined) return now + cookie.maxAge * 1000;
  if (cookie.expires !== undefined) return new Date(cookie.expires).getTime();
  return undefined;
}

/** `name=value` pairs of a `Cookie` header value, in order. */
function jarOf(header: string): Map<string, string> {
  const jar = new Map<string, string>();
  for (const pair of header.split('; ')) {
    const at = pair.indexOf('=');
    if (at > 0) jar.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return jar;
}

const headerOf = (jar: Map<string, string>) => [...jar].map(([name, value]) => `${name}=${value}`).join('; ');

/**
 * A login that yields a session cookie, sent as `Cookie` to the API's origins, obtained again after a
 * 401, and kept current when a response rotates it (`Set-Cookie` parsed by undici's cookie parser).
 */
const COOKIE_SESSION = new Set(['loginURL', 'method', 'headers', 'body', 'cookies', 'id', 'lifetime']);

export function cookieSession(given: CookieSessionOptions): Grant {
  const options = own(given);
  checkNames('cookieSession', options, COOKIE_SESSION);
  const { loginURL, method = 'POST', body, cookies, lifetime = 30 * 60_000 } = options;
  const headers = options.headers === undefined ? {} : own(options.headers);
  if (typeof loginURL !== 'string' || loginURL.length === 0 || /^(?![a-z][a-z0-9+.-]*:)\/\//i.test(loginURL)) {
    throw new ConfigError('cookieSession: loginURL must be an absolute http(s) URL or a path under the baseURL');
  }
  const absolute = /^[a-z][a-z0-9+.-]*:/i.test(loginURL);
  if (absolute && !/^https?:\/\//i.test(checkedURL(loginURL))) {
    throw new ConfigError('cookieSession: loginURL must be an absolute http(s) URL or a path under the baseURL');
  }
  if ((!absolute || typeof body === 'function') && !options.id) {
    throw new ConfigError(
      'cookieSession: give an id (e.g. "acme:alice") with a relative loginURL or a body function: it names the session in the store',
    );
  }
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') throw new ConfigError(`cookieSession: header ${name} must be a string`);
  }
  const wanted = cookies === undefined ? undefined : new Set(cookies);
  return {
    identity: { grant: 'cookie', id: options.id ?? loginURL, params: options.id ? undefined : shapeOf(body) },
    canReauthenticate: true,
    placement: { header: 'cookie' },
    async obtain({ fetch, signal }) {
      const request = new Headers({ accept: 'application/json', ...headers });
      const form = typeof body === 'function' ? await body() : body;
      let payload: string | undefined;
      if (form instanceof URLSearchParams) {
        request.set('content-type', 'application/x-www-form-urlencoded');
        payload = form.toString();
      } else if (form !== undefined) {
        request.set('content-type', 'application/json');
        payload = JSON.stringify(form);
      }
      const response = await fetch(loginURL, {
        method,
        headers: request,
        body: payload ?? null,
        signal: signal ?? null,
      });
      await response.arrayBuffer();
      const at = { method, url: response.url || loginURL, status: response.status };
      if (!response.ok) throw new AuthError(`login failed with status ${response.status}`, at);
      const now = Date.now();
      const jar = new Map<string, string>();
      let expiresAt: number | undefined;
      for (const line of response.headers.getSetCookie()) {
        const cookie = parseCookie(line);
        if (!cookie?.name || (wanted && !wanted.has(cookie.name))) continue;
        jar.set(cookie.name, cookie.value);
        const ends = cookieExpiry(cookie, now);
        if (ends !== undefined && Number.isFinite(ends)) expiresAt = Math.min(expiresAt ?? ends, ends);
      }
      if (jar.size === 0) throw new AuthError('login answered without a session cookie', at);
      return { accessToken: headerOf(jar), tokenType: 'cookie', expiresAt: expiresAt ?? now + lifetime };
    },
    rotate(tokens, responseHeaders) {
      const lines = responseHeaders.getSetCookie();
      if (lines.length === 0) return undefined;
      const jar = jarOf(tokens.accessToken);
      const now = Date.now();
      let expiresAt = tokens.expiresAt;
      let changed = false;
      for (const line of lines) {
        const cookie = parseCookie(line);
        if (!cookie?.name || !(jar.has(cookie.name) || wanted?.has(cookie.name))) continue;
        const ends = cookieExpiry(cookie, now);
        // An unreadable date (NaN) is no expiry, not a deletion.
        if (cookie.value === '' || (ends !== undefined && ends <= now)) {
          // The server ended the session: the next request logs in again.
          changed = jar.delete(cookie.name) || changed;
          expiresAt = now;
        } else if (jar.get(cookie.name) !== cookie.value) {
          jar.set(cookie.name, cookie.value);
          changed = true;
          if (ends !== undefined && Number.isFinite(ends)) expiresAt = ends;
        }
      }
      if (!changed) return undefined;
      return { accessToken: jar.size > 0 ? headerOf(jar) : tokens.accessToken, tokenType: 'cookie', expiresAt };
    },
  };
}

function checkedURL(value: string): string {
  try {
    return new URL(value).href;
  } catch {
    throw new ConfigError('cookieSession: loginURL must be an absolute http(s) URL or a path under the baseURL');
  }
}

/** Login fields that say who logs in (never how): they tell two sessions on one login URL apart. */
const WHO =
  /^(?:user(?:_?name)?|login|email|account|org(?:_?id)?|organi[sz]ation(?:_?id)?|tenant(?:_?id)?|domain|realm|client_?id)$/i;

/**
 * The fields of a static login body that name the user, org or tenant: two users never share one
 * session, and nothing that could be a password (whatever its field is called) reaches the store key.
 */
function shapeOf(body: CookieSessionOptions['body']): string | undefined {
  if (body === undefined || typeof body === 'function') return undefined;
  const entries = body instanceof URLSearchParams ? [...body] : Object.entries(body);
  const shaping = entries
    .filter(([name, value]) => WHO.test(name) && (typeof value === 'string' || typeof value === 'number'))
    .map(([name, value]) => `${name}=${String(value)}`)
    .sort();
  return shaping.length > 0 ? JSON.stringify(shaping) : undefined;
}
