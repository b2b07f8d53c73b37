import { AuthError, ConfigError } from './errors.js';
import { checkNames, own } from './own.js';
import { isSecretName } from './redact.js';
import type { TokenFetch } from './token-fetch.js';
import { parseTokenResponse, type TokenInput, type TokenSet } from './token-set.js';

export interface GrantContext {
  /**
   * A fetch that bypasses the client's auth chain and never follows redirects. A path is resolved
   * against the client's `baseURL`; requests to the API's origins carry the client's default headers
   * (under the request's own), requests elsewhere (an identity provider) do not.
   */
  fetch: TokenFetch;
  signal?: AbortSignal | undefined;
}

/** Where a credential goes on a request. */
export type Placement = { header: string; scheme?: string | undefined } | { query: string };

/** Obtains tokens. Grants hold secrets; their `identity` never does. */
export interface Grant {
  /** What makes two grants the same credential (token URL, client id, scope, audience, tenant...): no secrets. */
  readonly identity: Readonly<Record<string, string | undefined>>;
  /** Gets a fresh token from the primary credential. */
  obtain(context: GrantContext): Promise<TokenInput>;
  /** Exchanges a refresh token; absent when the grant has no refresh step. */
  refresh?(context: GrantContext, tokens: TokenSet): Promise<TokenInput>;
  /**
   * Renews the current access token itself, without a refresh token (Vault's `renew-self`): tried
   * before `obtain()` while the token has not expired; when the server refuses, `obtain()` runs.
   */
  renew?(context: GrantContext, tokens: TokenSet): Promise<TokenInput>;
  /**
   * A response to a request that carried `tokens` may hand over a new credential (a rotated session
   * cookie). Returns it, or undefined when the response changes nothing. Runs on every such response:
   * keep it cheap.
   */
  rotate?(tokens: TokenSet, headers: Headers): TokenInput | undefined;
  /** `obtain()` can run again on its own (client credentials, password, login). False for refresh-token-only grants. */
  readonly canReauthenticate: boolean;
  /** @default { header: 'authorization' } with the token type as scheme */
  readonly placement?: Placement;
}

/** A credential that never changes: API keys, personal access tokens, HTTP Basic. */
export interface StaticCredential {
  readonly static: true;
  readonly value: string;
  readonly placement: Placement;
}

type AuthMethod = 'basic' | 'body';

interface OAuthClient {
  /** The token endpoint, e.g. https://auth.example.com/oauth/token */
  tokenURL: string;
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  /** How the client authenticates: HTTP Basic (RFC 6749 2.3.1) or form fields. @default 'basic' */
  authMethod?: AuthMethod | undefined;
  scope?: string | undefined;
  audience?: string | undefined;
  resource?: string | undefined;
  /** Tenant or organisation: part of the token's identity, so tenants never share a token. */
  tenant?: string | undefined;
  /** Extra form fields sent with every token request. */
  extraParams?: Record<string, string> | undefined;
}

function checkURL(name: string, value: unknown): string {
  try {
    const url = new URL(String(value));
    if (url.protocol === 'https:' || url.protocol === 'http:') return url.href;
  } catch {}
  throw new ConfigError(`${name} must be an absolute http(s) URL`);
}

function required(grant: string, fields: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value !== 'string' || value.length === 0) throw new ConfigError(`${grant}: ${name} is required`);
  }
}

/** Form-encodes per RFC 6749 appendix B before Basic-encoding, as the spec asks. */
function basicHeader(id: string, secret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}`;
}

/** POSTs a form to the token endpoint and validates the answer. */
async function tokenRequest(client: OAuthClient, params: Record<string, string | undefined>, context: GrantContext) {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...params, ...client.extraParams })) {
    if (value !== undefined) form.set(name, value);
  }
  const headers = new Headers({ accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' });
  if (client.clientId !== undefined) {
    if (client.authMethod === 'body' || client.clientSecret === undefined) {
      form.set('client_id', client.clientId);
      if (client.clientSecret !== undefined) form.set('client_secret', client.clientSecret);
    } else headers.set('authorization', basicHeader(client.clientId, client.clientSecret));
  }
  const response = await context.fetch(client.tokenURL, {
    method: 'POST',
    headers,
    body: form.toString(),
    signal: context.signal ?? null,
  });
  const secrets: string[] = [];
  for (const [name, value] of form) if (isSecretName(name)) secrets.push(value);
  if (client.clientSecret !== undefined) secrets.push(client.clientSecret);
  return parseTokenResponse(response.status, response.headers.get('content-type') ?? '', await response.text(), {
    method: 'POST',
    url: client.tokenURL,
    secrets,
  });
}

/**
 * What makes two configurations the same credential: everything that can change the token the server
 * issues, `extraParams` included (an `organization` field is a tenant). Hashed into the store key.
 */
function oauthIdentity(kind: string, client: OAuthClient, extra: Record<string, string | undefined> = {}) {
  const { tokenURL, clientId, scope, audience, resource, tenant, extraParams } = client;
  // Secret-named fields (an assertion) are left out: the key must not be a hash of a secret.
  const shaping = Object.entries(extraParams ?? {}).filter(([name]) => !isSecretName(name));
  const params =
    shaping.length > 0 ? JSON.stringify(shaping.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : undefined;
  return { grant: kind, tokenURL, clientId, scope, audience, resource, tenant, params, ...extra };
}

function refreshWith(client: OAuthClient) {
  return (context: GrantContext, tokens: TokenSet) => {
    if (!tokens.refreshToken)
      return Promise.reject(new AuthError('no refresh token to use', { code: 'AUTH_NO_REFRESH_TOKEN' }));
    return tokenRequest(client, { grant_type: 'refresh_token', refresh_token: tokens.refreshToken }, context);
  };
}

const OAUTH_CLIENT = [
  'tokenURL',
  'clientId',
  'clientSecret',
  'authMethod',
  'scope',
  'audience',
  'resource',
  'tenant',
  'extraParams',
];
const GRANT_OPTIONS: Record<string, ReadonlySet<string>> = {
  clientCredentials: new Set(OAUTH_CLIENT),
  passwordGrant: new Set([...OAUTH_CLIENT, 'username', 'password']),
  refreshTokenGrant: new Set([...OAUTH_CLIENT, 'refreshToken']),
  customGrant: new Set(['id', 'obtain', 'refresh', 'renew', 'canReauthenticate', 'placement']),
};

function checkClient(kind: string, client: OAuthClient): OAuthClient {
  const tokenURL = checkURL(`${kind}: tokenURL`, client.tokenURL);
  if (client.authMethod !== undefined && client.authMethod !== 'basic' && client.authMethod !== 'body') {
    throw new ConfigError(`${kind}: authMethod must be 'basic' or 'body'`);
  }
  return { ...client, tokenURL };
}

/** OAuth 2.0 client credentials (RFC 6749 4.4), for service-to-service calls. */
export function clientCredentials(options: OAuthClient & { clientId: string; clientSecret: string }): Grant {
  checkNames('clientCredentials', options, GRANT_OPTIONS.clientCredentials as ReadonlySet<string>);
  required('clientCredentials', { clientId: options.clientId, clientSecret: options.clientSecret });
  const client = checkClient('clientCredentials', options);
  const { scope, audience, resource } = client;
  return {
    identity: oauthIdentity('client_credentials', client),
    canReauthenticate: true,
    obtain: (context) => tokenRequest(client, { grant_type: 'client_credentials', scope, audience, resource }, context),
    refresh: refreshWith(client),
  };
}

/** OAuth 2.0 resource owner password credentials (RFC 6749 4.3). */
export function passwordGrant(options: OAuthClient & { username: string; password: string }): Grant {
  checkNames('passwordGrant', options, GRANT_OPTIONS.passwordGrant as ReadonlySet<string>);
  required('passwordGrant', { username: options.username, password: options.password });
  const client = checkClient('passwordGrant', options);
  const { username, password, scope, audience, resource } = { ...client, ...options };
  return {
    identity: oauthIdentity('password', client, { username }),
    canReauthenticate: true,
    obtain: (context) =>
      tokenRequest(client, { grant_type: 'password', username, password, scope, audience, resource }, context),
    refresh: refreshWith(client),
  };
}

/**
 * Only a refresh token (e.g. from an authorization-code flow done elsewhere). Rotation-aware: the
 * stored, newest refresh token is always the one used; `refreshToken` here only seeds an empty store.
 */
export function refreshTokenGrant(options: OAuthClient & { refreshToken: string }): Grant {
  checkNames('refreshTokenGrant', options, GRANT_OPTIONS.refreshTokenGrant as ReadonlySet<string>);
  required('refreshTokenGrant', { refreshToken: options.refreshToken });
  const client = checkClient('refreshTokenGrant', options);
  const seed = options.refreshToken;
  return {
    identity: oauthIdentity('refresh_token', client),
    canReauthenticate: false,
    obtain: (context) => tokenRequest(client, { grant_type: 'refresh_token', refresh_token: seed }, context),
    refresh: refreshWith(client),
  };
}

export interface CustomGrantOptions {
  /** Names this credential in the store key, e.g. `'acme-login:org-42:alice'`. No secrets. */
  id: string;
  /** Gets a token, typically from a login endpoint, through `context.fetch`. */
  obtain(context: GrantContext): Promise<TokenInput>;
  refresh?(context: GrantContext, tokens: TokenSet): Promise<TokenInput>;
  /** Renews the access token itself (no refresh token), e.g. Vault's `renew-self`; `obtain` is the fallback. */
  renew?(context: GrantContext, tokens: TokenSet): Promise<TokenInput>;
  /** @default true */
  canReauthenticate?: boolean | undefined;
  placement?: Placement | undefined;
}

/** Any login endpoint: you make the request, Sluice stores, shares and refreshes the result. */
export function customGrant(given: CustomGrantOptions): Grant {
  const options = own(given);
  checkNames('customGrant', options, GRANT_OPTIONS.customGrant as ReadonlySet<string>);
  required('customGrant', { id: options.id });
  if (typeof options.obtain !== 'function') throw new ConfigError('customGrant: obtain must be a function');
  for (const name of ['refresh', 'renew'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function')
      throw new ConfigError(`customGrant: ${name} must be a function`);
  }
  return {
    identity: { grant: 'custom', id: options.id },
    canReauthenticate: options.canReauthenticate ?? true,
    obtain: options.obtain,
    ...(options.refresh ? { refresh: options.refresh } : {}),
    ...(options.renew ? { renew: options.renew } : {}),
    ...(options.placement ? { placement: options.placement } : {}),
  };
}
