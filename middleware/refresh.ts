import { canResend } from '../src/body.js';
import { after, builtIn, forward } from '../src/compose.js';
import { AuthError, BodyNotReplayableError, ConfigError } from '../src/errors.js';
import { redactUrl } from '../src/redact.js';
import type { HttpRequest } from '../src/request.js';
import type { HttpResponse } from '../src/response.js';
import type { TokenManager } from '../src/tokens.js';
import type { Middleware, Next } from '../src/types.js';
import { originGuard } from './auth.js';

export interface Challenge {
  /** The auth scheme, lower case: `bearer`, `basic`, `dpop`... */
  scheme: string;
  /** Parameter names in lower case; values unquoted, at most 300 characters, control characters removed. */
  params: Record<string, string>;
  token68?: string;
}

const TCHAR = /[!#$%&'*+.^_`|~\w-]/;
const isSpace = (c: string | undefined) => c === ' ' || c === '\t';

/**
 * Every challenge of a `WWW-Authenticate` header (RFC 9110 11.6.1), in one left-to-right pass: the
 * cost is linear in the header's length whatever a server sends, and each challenge keeps its own
 * parameters (a `Basic` challenge's `error` is not the Bearer one's).
 */
export function parseChallenges(value: string | null): Challenge[] {
  const challenges: Challenge[] = [];
  if (!value) return challenges;
  const text = value.length > 16_384 ? value.slice(0, 16_384) : value;
  let i = 0;
  const token = (): string => {
    const start = i;
    while (i < text.length && TCHAR.test(text[i] as string)) i++;
    return text.slice(start, i);
  };
  const skip = (commas: boolean) => {
    while (i < text.length && (isSpace(text[i]) || (commas && text[i] === ','))) i++;
  };
  let current: Challenge | undefined;
  while (i < text.length) {
    skip(true);
    const start = i;
    const name = token();
    if (name === '') {
      i = Math.max(i, start + 1); // a character no grammar rule allows: skip it
      continue;
    }
    skip(false);
    if (text[i] !== '=' || current === undefined) {
      // A scheme starts a new challenge (a name followed by "=" before any scheme is ignored).
      if (text[i] === '=') {
        while (text[i] === '=') i++;
        continue;
      }
      if (challenges.length === 32) break; // more than any real server sends
      current = { scheme: name.toLowerCase(), params: Object.create(null) as Record<string, string> };
      challenges.push(current);
      continue;
    }
    i++; // "="
    skip(false);
    if (text[i] === '=' || text[i] === ',' || i >= text.length) {
      // token68 padding ("abc==")
      while (text[i] === '=') i++;
      current.token68 ??= name;
      continue;
    }
    let raw: string;
    if (text[i] === '"') {
      i++;
      let out = '';
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        if (out.length < 300) out += text[i];
        i++;
      }
      i++; // closing quote
      raw = out;
    } else raw = token().slice(0, 300);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
    current.params[name.toLowerCase()] = raw.replace(/[\u0000-\u001f\u007f]/g, '');
  }
  return challenges;
}

/**
 * The parameters of the Bearer challenge (RFC 6750 3: `error`, `error_description`, `scope`...), or of
 * the only challenge there is, plus `scheme`. Another scheme's `error` among several is not ours.
 */
export function parseWwwAuthenticate(value: string | null): Record<string, string> {
  const challenges = parseChallenges(value);
  const chosen =
    challenges.find((challenge) => challenge.scheme === 'bearer') ??
    (challenges.length === 1 ? challenges[0] : undefined);
  return chosen ? { ...chosen.params, scheme: chosen.scheme } : {};
}

/** True when no challenge was parsed (nothing to go by) or one names `scheme`. */
function isOurs(challenges: Challenge[], scheme: string): boolean {
  return challenges.length === 0 || challenges.some((challenge) => challenge.scheme === scheme);
}

export interface RefreshOptions {
  manager: TokenManager;
  /** Origins whose refusals may trigger a refresh (the same as the auth middleware's). */
  origins: readonly string[];
  /** Statuses that mean "credential refused". @default [401] */
  statuses?: readonly number[];
  /** Last word on whether a refusal should refresh; e.g. to also refresh on some 403s. */
  shouldRefresh?: (response: HttpResponse, request: HttpRequest) => boolean | Promise<boolean>;
  /**
   * The auth scheme this credential is sent with (`Bearer`). A refusal whose `WWW-Authenticate` names
   * only other schemes (a gateway's `Key`, a proxy's `Basic`) belongs to another layer: no refresh.
   */
  scheme?: string | undefined;
}

/**
 * On a refused credential, gets a new token (or the one another request already got) and re-issues the
 * request exactly once. A second refusal is an `AuthError`, never a loop. `insufficient_scope` is not a
 * token problem and is returned as it is.
 */
export function refresh({ manager, origins, statuses = [401], shouldRefresh, scheme }: RefreshOptions): Middleware {
  if (!manager) throw new ConfigError('refresh: manager is required');
  const isAllowed = originGuard(origins);
  const refusals = new Set(statuses);
  const ours = scheme?.toLowerCase();
  // One step for every call (made once here): it gets the call's request and next from the answer.
  const answered = (response: HttpResponse, request: HttpRequest, next: Next) =>
    !refusals.has(response.status) || request.options.auth === false || !isAllowed(response.url)
      ? response
      : onRefusal(request, next, response);
  // Not async: while the answer is awaited, a call holds a step on the answer, not a suspended function.
  return builtIn(function refreshOnRefusal(request, next) {
    return after(forward(next, request), next, answered, undefined, request, next);
  });

  async function onRefusal(request: HttpRequest, next: Next, response: HttpResponse): Promise<HttpResponse> {
    const header = response.header('www-authenticate');
    if (ours && header && !isOurs(parseChallenges(header), ours)) return response;
    const challenge = parseWwwAuthenticate(header);
    if (challenge.error === 'insufficient_scope') return response;
    if (shouldRefresh && !(await shouldRefresh(response, request))) return response;
    await response.discard();
    if (!canResend(request)) throw new BodyNotReplayableError({ method: request.method, url: request.url });
    const generation = request.state.generation;
    const tokens = await manager.rejected(generation, request);
    request.events?.({
      type: 'reissue',
      requestId: request.state.id,
      method: request.method,
      url: redactUrl(request.url),
      reason: `status ${response.status}${challenge.error ? ` (${challenge.error})` : ''}`,
      generation: tokens.generation,
    });
    const second = await next(request);
    if (!refusals.has(second.status) || !isAllowed(second.url)) return second;
    const again = parseWwwAuthenticate(second.header('www-authenticate'));
    await second.discard();
    return Promise.reject(
      new AuthError(`the API refused a freshly obtained credential (${second.status})`, {
        code: 'AUTH_REJECTED',
        status: second.status,
        oauthError: again.error,
        oauthErrorDescription: again.error_description,
        method: request.method,
        url: request.url,
        attempts: request.state.attempts,
      }),
    );
  }
}
