import { inspect } from 'node:util';
import { AuthError } from './errors.js';
import { REDACTED, redactText } from './redact.js';

/** A credential and what is known about it. `expiresAt` is epoch ms. */
export interface TokenSet {
  readonly accessToken: string;
  /** `Bearer`, or `cookie`, `Basic`, ... for other credential kinds. */
  readonly tokenType: string;
  readonly expiresAt: number;
  readonly refreshToken?: string | undefined;
  readonly scope?: string | undefined;
  /** Increases by one with every new token for this credential, across every process sharing a store. */
  readonly generation: number;
}

/** What a grant returns: a TokenSet before it has a generation, with expiry in either form. */
export interface TokenInput {
  accessToken: string;
  tokenType?: string | undefined;
  /** Epoch ms. */
  expiresAt?: number | undefined;
  /** Seconds from now, as in OAuth's `expires_in`. */
  expiresIn?: number | undefined;
  refreshToken?: string | undefined;
  scope?: string | undefined;
}

// Any C0 control character or DEL: a token carrying one could split a header line.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Expiry more than ten years out is taken as a mistake in units, not a real lifetime. */
const MAX_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;

function checkSecret(name: string, value: unknown, required: boolean): string | undefined {
  if (value === undefined || value === null) {
    if (required) throw new AuthError(`token response has no ${name}`, { code: 'AUTH_INVALID_RESPONSE' });
    return undefined;
  }
  if (typeof value !== 'string' || value.length === 0) {
    throw new AuthError(`token response ${name} is not a non-empty string`, { code: 'AUTH_INVALID_RESPONSE' });
  }
  if (CONTROL.test(value)) {
    throw new AuthError(`token response ${name} contains control characters; rejected`, { code: 'AUTH_INVALID_TOKEN' });
  }
  if (value.length > 16_384)
    throw new AuthError(`token response ${name} is too long`, { code: 'AUTH_INVALID_RESPONSE' });
  return value;
}

/** Validates a grant's result and gives it its generation. Hides secrets from logs and `JSON.stringify`. */
export function toTokenSet(
  input: TokenInput,
  generation: number,
  defaultLifetimeMs: number,
  now = Date.now(),
): TokenSet {
  if (input === null || typeof input !== 'object') {
    throw new AuthError('grant returned no token', { code: 'AUTH_INVALID_RESPONSE' });
  }
  const accessToken = checkSecret('access token', input.accessToken, true) as string;
  const refreshToken = checkSecret('refresh token', input.refreshToken, false);
  const tokenType = input.tokenType === undefined ? 'Bearer' : input.tokenType;
  if (typeof tokenType !== 'string' || !/^[\w.~+/-]{1,64}$/.test(tokenType)) {
    throw new AuthError('token response token_type is invalid', { code: 'AUTH_INVALID_RESPONSE' });
  }
  let expiresAt: number;
  if (input.expiresAt !== undefined) {
    expiresAt = input.expiresAt;
  } else if (input.expiresIn !== undefined) {
    expiresAt = now + input.expiresIn * 1000;
  } else expiresAt = now + defaultLifetimeMs;
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt) || expiresAt < now - 1000) {
    throw new AuthError('token expiry is not a finite time in the future', { code: 'AUTH_INVALID_RESPONSE' });
  }
  expiresAt = Math.min(expiresAt, now + MAX_LIFETIME_MS);
  const scope = typeof input.scope === 'string' ? input.scope : undefined;
  return sealed({
    accessToken,
    tokenType: tokenType.toLowerCase() === 'bearer' ? 'Bearer' : tokenType,
    expiresAt,
    refreshToken,
    scope,
    generation,
  });
}

/** The same TokenSet with its secrets hidden from `JSON.stringify`, `console.log` and util.inspect. */
export function sealed(tokens: TokenSet): TokenSet {
  const safe = () => ({
    ...tokens,
    accessToken: REDACTED,
    ...(tokens.refreshToken ? { refreshToken: REDACTED } : {}),
  });
  const copy = { ...tokens };
  Object.defineProperty(copy, 'toJSON', { value: safe, enumerable: false });
  Object.defineProperty(copy, inspect.custom, { value: () => safe(), enumerable: false });
  return Object.freeze(copy);
}

/** Where a token response came from, for the error messages: the token endpoint's method and URL (redacted when shown). */
export interface TokenEndpoint {
  method: string;
  url: string;
  /** What the request carried that must never be echoed back (client secret, password, refresh token...). */
  secrets?: readonly string[];
}

/**
 * Server text fit for a message: control characters (log injection) folded, any secret the request
 * carried scrubbed (servers echo them), secret-named pairs redacted, short.
 */
function sanitize(text: string, max: number, secrets: readonly string[] = []): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  let clean = text.slice(0, max).replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
  for (const secret of secrets) if (secret.length >= 4) clean = clean.replaceAll(secret, REDACTED);
  return redactText(clean).trim();
}

/** A successful answer in JSON, or form-encoded (RFC 6749 servers of old, GitHub without Accept). */
function parseBody(text: string, contentType: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    if (!/application\/x-www-form-urlencoded/i.test(contentType)) throw error;
    const fields: Record<string, string> = Object.create(null);
    for (const [name, value] of new URLSearchParams(text)) fields[name] = value;
    return fields;
  }
}

/**
 * The OAuth 2.0 token response (RFC 6749 5.1) as a TokenInput; anything else is an `AuthError` whose
 * message names the endpoint, the status, the OAuth `error` and its (sanitized) `error_description`.
 */
export function parseTokenResponse(
  status: number,
  contentType: string,
  text: string,
  endpoint?: TokenEndpoint,
): TokenInput {
  const at = endpoint ? { method: endpoint.method, url: endpoint.url } : {};
  const secrets = endpoint?.secrets ?? [];
  let body: unknown;
  try {
    body = parseBody(text, contentType);
  } catch {
    throw new AuthError(
      `token endpoint answered ${status} with a body that is not JSON (${sanitize(contentType, 100) || 'no content type'}, ${text.length} bytes)`,
      { code: 'AUTH_INVALID_RESPONSE', status, retryable: status >= 500, ...at },
    );
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AuthError(`token endpoint answered ${status} with JSON that is not an object`, {
      code: 'AUTH_INVALID_RESPONSE',
      status,
      ...at,
    });
  }
  const fields = body as Record<string, unknown>;
  if (typeof fields.error === 'string' || status >= 400) {
    // OAuth's shape first, then the common others: {errors:[{errorType, message}]} (fitbit), {message}.
    const first = Array.isArray(fields.errors) ? (fields.errors[0] as Record<string, unknown> | undefined) : undefined;
    const code = typeof fields.error === 'string' ? fields.error : (first?.errorType ?? first?.code);
    const text = fields.error_description ?? first?.message ?? fields.message;
    const oauthError = typeof code === 'string' ? sanitize(code, 64, secrets).replace(/\s+/g, '_') : undefined;
    const description = typeof text === 'string' ? sanitize(text, 300, secrets) : undefined;
    const said = [oauthError, description].filter(Boolean).join(': ');
    throw new AuthError(`token request failed: ${status}${said ? ` ${said}` : ''}`, {
      oauthError: oauthError || undefined,
      oauthErrorDescription: description,
      status,
      retryable: status >= 500,
      ...at,
    });
  }
  const expiresIn = fields.expires_in;
  let seconds: number | undefined;
  if (expiresIn !== undefined && expiresIn !== null) {
    seconds =
      typeof expiresIn === 'string' && /^\d+(\.\d+)?$/.test(expiresIn.trim())
        ? Number(expiresIn)
        : (expiresIn as number);
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
      throw new AuthError('token response expires_in is not a non-negative number', { code: 'AUTH_INVALID_RESPONSE' });
    }
  }
  return {
    accessToken: fields.access_token as string,
    tokenType: (fields.token_type as string | undefined) ?? 'Bearer',
    expiresIn: seconds,
    // An empty refresh_token is "no new one": the one in hand stays.
    refreshToken: fields.refresh_token === '' ? undefined : (fields.refresh_token as string | undefined),
    scope: fields.scope as string | undefined,
  };
}
