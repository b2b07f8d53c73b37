import { AuthError, ConfigError } from './errors.js';
import type { Grant, Placement, StaticCredential } from './grants.js';
import { own, placementOf } from './own.js';

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

export interface CookieSessionOptions {
  /** The login endpoint that answers with `Set-Cookie`. */
  loginURL: string;
  /** @default 'POST' */
  method?: string;
  /** The login request body: an object is sent as JSON, URLSearchParams as a form. */
  body?: Record<string, unknown> | URLSearchParams;
  /** Only keep these cookies (e.g. `['SESSIONID']`). @default every cookie the login sets */
  cookies?: readonly string[];
  /** Names this session in the store key. No secrets. @default the login URL */
  id?: string;
  /** Session lifetime when the cookie carries no Max-Age/Expires, in ms. @default 30 minutes */
  lifetime?: number;
}

/** A login that yields a session cookie, sent as `Cookie` and obtained again after a 401. */
export function cookieSession(given: CookieSessionOptions): Grant {
  const options = own(given);
  const { loginURL, method = 'POST', body, cookies, lifetime = 30 * 60_000 } = options;
  try {
    new URL(loginURL);
  } catch {
    throw new ConfigError('cookieSession: loginURL must be an absolute http(s) URL');
  }
  return {
    identity: { grant: 'cookie', id: options.id ?? loginURL },
    canReauthenticate: true,
    placement: { header: 'cookie' },
    async obtain({ fetch, signal }) {
      const headers = new Headers({ accept: 'application/json' });
      let payload: string | undefined;
      if (body instanceof URLSearchParams) {
        headers.set('content-type', 'application/x-www-form-urlencoded');
        payload = body.toString();
      } else if (body !== undefined) {
        headers.set('content-type', 'application/json');
        payload = JSON.stringify(body);
      }
      const response = await fetch(loginURL, { method, headers, body: payload ?? null, signal: signal ?? null });
      await response.arrayBuffer();
      const at = { method, url: loginURL, status: response.status };
      if (!response.ok) throw new AuthError(`login failed with status ${response.status}`, at);
      const pairs: string[] = [];
      let expiresAt: number | undefined;
      for (const line of response.headers.getSetCookie()) {
        const [pair = '', ...attributes] = line.split(';');
        const name = pair.slice(0, pair.indexOf('=')).trim();
        if (!name || (cookies && !cookies.includes(name))) continue;
        pairs.push(pair.trim());
        for (const attribute of attributes) {
          const [key = '', value = ''] = attribute.split('=');
          const lower = key.trim().toLowerCase();
          const at =
            lower === 'max-age'
              ? Date.now() + Number(value) * 1000
              : lower === 'expires'
                ? Date.parse(value)
                : Number.NaN;
          if (Number.isFinite(at)) expiresAt = Math.min(expiresAt ?? at, at);
        }
      }
      if (pairs.length === 0) throw new AuthError('login answered without a session cookie', at);
      return { accessToken: pairs.join('; '), tokenType: 'cookie', expiresAt: expiresAt ?? Date.now() + lifetime };
    },
  };
}
