import { canResend } from '../src/body.js';
import { AuthError, BodyNotReplayableError, ConfigError } from '../src/errors.js';
import { redactUrl } from '../src/redact.js';
import type { HttpRequest } from '../src/request.js';
import type { HttpResponse } from '../src/response.js';
import type { TokenManager } from '../src/tokens.js';
import type { Middleware } from '../src/types.js';
import { originGuard } from './auth.js';

/** The parameters of a `WWW-Authenticate` challenge (RFC 6750 3): `error`, `error_description`, `scope`... */
export function parseWwwAuthenticate(value: string | null): Record<string, string> {
  const params: Record<string, string> = {};
  if (!value) return params;
  const scheme = /^\s*([\w-]+)/.exec(value);
  if (scheme?.[1]) params.scheme = scheme[1];
  for (const match of value.matchAll(/([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
    const [, name, quoted, bare] = match;
    if (name) params[name.toLowerCase()] = (quoted ?? bare ?? '').slice(0, 300);
  }
  return params;
}

export interface RefreshOptions {
  manager: TokenManager;
  /** Origins whose refusals may trigger a refresh (the same as the auth middleware's). */
  origins: readonly string[];
  /** Statuses that mean "credential refused". @default [401] */
  statuses?: readonly number[];
  /** Last word on whether a refusal should refresh; e.g. to also refresh on some 403s. */
  shouldRefresh?: (response: HttpResponse, request: HttpRequest) => boolean | Promise<boolean>;
}

/**
 * On a refused credential, gets a new token (or the one another request already got) and re-issues the
 * request exactly once. A second refusal is an `AuthError`, never a loop. `insufficient_scope` is not a
 * token problem and is returned as it is.
 */
export function refresh({ manager, origins, statuses = [401], shouldRefresh }: RefreshOptions): Middleware {
  if (!manager) throw new ConfigError('refresh: manager is required');
  const isAllowed = originGuard(origins);
  const refusals = new Set(statuses);
  return async function refreshOnRefusal(request, next) {
    const response = await next(request);
    if (!refusals.has(response.status) || request.options.auth === false || !isAllowed(response.url)) return response;
    const challenge = parseWwwAuthenticate(response.header('www-authenticate'));
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
  };
}
