import { auth, originGuard } from '../middleware/auth.js';
import { refresh } from '../middleware/refresh.js';
import { ConfigError } from './errors.js';
import type { Grant, StaticCredential } from './grants.js';
import { defaultHeaders, own } from './own.js';
import type { HttpRequest } from './request.js';
import type { HttpResponse } from './response.js';
import type { Lock, TokenStore } from './store.js';
import { createTokenFetch, type TokenFetchOptions } from './token-fetch.js';
import type { TokenInput, TokenSet } from './token-set.js';
import { TokenManager } from './tokens.js';
import type { EventSink, HeadersInput, Middleware, Transport } from './types.js';

/** One credential layer of a client. */
export interface AuthOptions {
  /** `clientCredentials(...)`, `passwordGrant(...)`, `customGrant(...)`, `cookieSession(...)`, or a static credential. */
  grant: Grant | StaticCredential;
  /** Where tokens are kept and shared: a TokenStore from `sluice/stores` (e.g. `redisTokenStore(url).store`). @default process memory */
  store?: TokenStore | undefined;
  /** The lock that makes one holder refresh. Pass the one that goes with a shared store. @default in-process */
  lock?: Lock | undefined;
  /** Origins besides the baseURL's that may receive the credential, e.g. `['https://uploads.example.com']`. */
  origins?: readonly string[] | undefined;
  /**
   * Statuses that mean "credential refused". With several layers, a refusal whose `WWW-Authenticate`
   * names only schemes other than this layer's (a gateway's `Key` when this layer sends `Bearer`) is
   * left to the layer it names.
   * @default [401]
   */
  refreshOn?: readonly number[] | undefined;
  /** Let a grant whose placement is `{ query }` put its access token in the URL (RFC 6750 2.3 advises against it). @default false */
  allowTokenInQuery?: boolean | undefined;
  shouldRefresh?: ((response: HttpResponse, request: HttpRequest) => boolean | Promise<boolean>) | undefined;
  /** Refresh this long before expiry, in ms. @default 60000 */
  skew?: number | undefined;
  /** Random extra skew per process, in ms. @default 30000 */
  jitter?: number | undefined;
  /** Assumed lifetime when the token response has no `expires_in`, in ms. @default 3600000 */
  defaultLifetime?: number | undefined;
  /** @default 10000 */
  lockTtl?: number | undefined;
  /** @default 20000 */
  lockWait?: number | undefined;
  /** Largest token response accepted, in bytes. @default 65536 */
  maxTokenResponseBytes?: number | undefined;
  /**
   * Time limit of one token request (connect, headers, body), in ms. A caller never waits past its own
   * attempt timeout or deadline for it: the refresh goes on for the others, bounded by this. @default 10000
   */
  timeout?: number | undefined;
  /**
   * Token requests retried after a network failure, a timeout or a 5xx (a refresh token only when it
   * surely was not sent, or on a 503): one refusal costs at most `retry + 1` token requests, never
   * multiplied by the call's own retries. @default 2
   */
  retry?: number | undefined;
  /**
   * After a refresh whose answer was lost, present the same refresh token once more. Only for servers
   * with a documented reuse grace window (Okta, Auth0 rotation overlap). @default false
   */
  retryLostRefresh?: boolean | undefined;
  /** Longest token-endpoint cool-down (429 `Retry-After`) a call waits out, in ms. @default 60000 */
  maxRateLimitWait?: number | undefined;
  /**
   * A token set you saved (from `onTokenChange`), used when the store has none: after a restart the
   * client starts from it instead of spending a refresh token or logging in again.
   */
  initial?: TokenInput | undefined;
  /**
   * Called when the client closes: `auth: { grant, ...redisTokenStore(url) }` hands the store's
   * connections to the client this way. Pass `{ store, lock }` alone to share one store among clients.
   */
  close?: (() => Promise<void>) | undefined;
}

/** What `api.auth` offers. */
export interface AuthControl {
  /** The current token, obtained if needed: the way to check credentials at start-up. */
  token(signal?: AbortSignal): Promise<TokenSet>;
  /** Forgets the current token; the next request gets a new one. */
  invalidate(): void;
  /** Called with every new token (secrets hidden from JSON and inspection). Returns the unsubscribe function. */
  onTokenChange(listener: (tokens: TokenSet) => void): () => void;
  /** The managers behind each token layer, for tests and metrics (e.g. `storeReads`). */
  readonly managers: readonly TokenManager[];
}

export interface AuthLayers {
  above: Middleware[];
  below: Middleware[];
  /** Every origin some layer may send its credential to. */
  origins: string[];
  /** Header and query names static credentials are placed in. */
  names: string[];
  control: AuthControl;
  close(): Promise<void>;
}

const AUTH_KEYS = new Set([
  'grant',
  'store',
  'lock',
  'origins',
  'refreshOn',
  'allowTokenInQuery',
  'shouldRefresh',
  'skew',
  'jitter',
  'defaultLifetime',
  'lockTtl',
  'lockWait',
  'maxTokenResponseBytes',
  'timeout',
  'retry',
  'retryLostRefresh',
  'maxRateLimitWait',
  'initial',
  'close',
]);

export interface AuthDefaults {
  store(): TokenStore;
  lock(): Lock;
}

/** Turns `auth` options into refresh middleware (above redirects) and auth middleware (below). */
export function buildAuthLayers(
  given: AuthOptions | readonly AuthOptions[],
  client: { baseURL?: string | undefined; headers?: HeadersInput | undefined },
  transport: Transport,
  events: () => EventSink | undefined,
  defaults: AuthDefaults,
): AuthLayers {
  const layers = Array.isArray(given) ? (given as readonly AuthOptions[]) : [given as AuthOptions];
  const above: Middleware[] = [];
  const below: Middleware[] = [];
  const managers: TokenManager[] = [];
  const allOrigins = new Set<string>();
  const names: string[] = [];
  const owned: { close?(): Promise<void> }[] = [];
  const { baseURL } = client;
  const headers = headerPairs(client.headers);
  for (const given of layers) {
    const layer = own(given);
    if (!layer || typeof layer !== 'object' || !layer.grant)
      throw new ConfigError('auth needs a grant, e.g. { grant: clientCredentials({...}) }');
    for (const name of Object.keys(layer)) {
      if (!AUTH_KEYS.has(name))
        throw new ConfigError(`unknown auth option "${name}"; valid: ${[...AUTH_KEYS].join(', ')}`);
    }
    const origins = [...(baseURL ? [new URL(baseURL).origin] : []), ...(layer.origins ?? [])];
    if (origins.length === 0)
      throw new ConfigError(
        'auth needs baseURL or auth.origins (createFetch has no baseURL: list the API origins the SDK calls, e.g. auth: { grant, origins: ["https://api.example.com"] }): the credential only goes to those origins',
      );
    for (const origin of origins) allOrigins.add(origin);
    // A grant is read through its own properties only (a planted `refresh` or `placement` is not its).
    const credential = own(layer.grant);
    const placement = credential.placement;
    if (placement) names.push('query' in placement ? placement.query : placement.header);
    if (placement && 'query' in placement && !('static' in credential) && layer.allowTokenInQuery !== true) {
      // URLs end up in proxy logs, server access logs and Referer headers: a bearer token in one is
      // a leak waiting to happen (RFC 6750 2.3), so it takes an explicit opt-in.
      throw new ConfigError(
        `auth: the grant puts its access token in the query string (${placement.query}); set auth.allowTokenInQuery: true if the API requires it`,
      );
    }
    if ('static' in credential) {
      below.push(auth({ credential, origins }));
      continue;
    }
    const store = layer.store ?? defaults.store();
    const lock = layer.lock ?? defaults.lock();
    if (!layer.store) owned.push(store);
    if (layer.close) owned.push({ close: layer.close });
    if (store.shared && !lock.shared) {
      throw new ConfigError('a shared token store needs a shared lock (e.g. redisTokenStore(url) gives both)');
    }
    if (store.namespace !== undefined && lock.namespace !== undefined && store.namespace !== lock.namespace) {
      throw new ConfigError(
        `the lock's namespace "${lock.namespace}" is not the store's "${store.namespace}": processes using the store under its own lock would not exclude each other; pass the same namespace to both (e.g. redisLock(client, { namespace: "${store.namespace}" }))`,
      );
    }
    const endpoint = { ...tokenEndpointOptions(layer), baseURL, headers, sendHeadersTo: originGuard(origins) };
    const manager = new TokenManager({
      grant: credential,
      store,
      lock,
      fetch: createTokenFetch(transport, endpoint),
      refreshFetch: createTokenFetch(transport, { ...endpoint, connectFailuresOnly: true }),
      events,
      ...pick(layer, [
        'skew',
        'jitter',
        'defaultLifetime',
        'lockTtl',
        'lockWait',
        'retryLostRefresh',
        'maxRateLimitWait',
        'initial',
      ] as const),
    });
    managers.push(manager);
    above.push(
      refresh({
        manager,
        origins,
        ...(layer.refreshOn ? { statuses: layer.refreshOn } : {}),
        ...(layer.shouldRefresh ? { shouldRefresh: layer.shouldRefresh } : {}),
        // With several layers, a refusal naming only another scheme (a gateway's `Key`) is not this
        // layer's to refresh. A single layer refreshes on any refusal, whatever challenge it carries.
        scheme:
          layers.length < 2 ? undefined : placement ? ('scheme' in placement ? placement.scheme : undefined) : 'Bearer',
      }),
    );
    below.push(auth({ credential: manager, origins }));
  }
  const first = managers[0];
  const control: AuthControl = {
    managers,
    token(signal) {
      if (!first)
        return Promise.reject(new ConfigError('this client has only static credentials: there is no token to get'));
      return first.token(signal ? { signal } : undefined);
    },
    invalidate() {
      for (const manager of managers) manager.invalidate();
    },
    onTokenChange(listener) {
      const offs = managers.map((manager) => manager.onTokenChange(listener));
      return () => {
        for (const off of offs) off();
      };
    },
  };
  return {
    above,
    below,
    origins: [...allOrigins],
    names,
    control,
    close: async () => {
      for (const manager of managers) manager.close();
      await Promise.all(owned.map((item) => item.close?.()));
    },
  };
}

function tokenEndpointOptions(layer: AuthOptions): TokenFetchOptions {
  const { maxTokenResponseBytes: maxBytes = 64 * 1024, timeout = 10_000, retry = 2 } = layer;
  if (typeof timeout !== 'number' || !(timeout > 0) || timeout > 2 ** 31 - 1) {
    throw new ConfigError(`auth.timeout must be a positive number of milliseconds, got ${String(timeout)}`);
  }
  if (!Number.isInteger(retry) || retry < 0 || retry > 10) {
    throw new ConfigError(`auth.retry must be an integer from 0 to 10, got ${String(retry)}`);
  }
  if (!Number.isInteger(maxBytes) || maxBytes < 1) {
    throw new ConfigError(`auth.maxTokenResponseBytes must be a positive integer, got ${String(maxBytes)}`);
  }
  return { maxBytes, timeout, attempts: retry + 1 };
}

/** The client's default headers as pairs, read through own properties only. */
function headerPairs(given: HeadersInput | undefined): [string, string][] {
  if (given === undefined) return [];
  return [...defaultHeaders(given)];
}

/** The given fields that are set (an `undefined` is left out, as if it were not given). */
function pick<T extends object, K extends keyof T>(
  source: T,
  keys: readonly K[],
): { [P in K]?: Exclude<T[P], undefined> } {
  const out: { [P in K]?: Exclude<T[P], undefined> } = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key] as Exclude<T[K], undefined>;
  return out;
}
