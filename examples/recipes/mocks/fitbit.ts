/**
 * A Fitbit Web API look-alike: a token endpoint that rotates single-use refresh tokens (HTTP Basic client
 * auth), and a profile endpoint that tells expired bearer tokens from unknown ones.
 */
import { createServer } from 'node:http';
import { json, listen, randomId, readBody, urlOf } from './http.js';

/** Options of {@link startFitbit}. */
export interface FitbitOptions {
  /** @default 'fitbit-app' */
  clientId?: string;
  /** @default 'fitbit-secret' */
  clientSecret?: string;
  /** Access token lifetime in seconds. @default 2 */
  accessLifetimeSeconds?: number;
}

/** An access and refresh token pair issued by the mock. */
export interface FitbitPair {
  accessToken: string;
  refreshToken: string;
  /** Epoch milliseconds when the access token expires. */
  expiresAt: number;
}

const scope = 'profile activity';
const docs =
  'Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process.';

function errors(errorType: string, message: string) {
  return { errors: [{ errorType, message }], success: false };
}

/** Starts the mock Fitbit API on 127.0.0.1 and an ephemeral port. */
export async function startFitbit(options: FitbitOptions = {}) {
  const { clientId = 'fitbit-app', clientSecret = 'fitbit-secret', accessLifetimeSeconds = 2 } = options;
  const counts = { refreshes: 0, reusedRefreshTokens: 0, apiCalls: 0 };
  const access = new Map<string, number>();
  const refresh = new Map<string, { used: boolean }>();
  const expectedBasic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;

  function issuePair(): FitbitPair {
    const accessToken = `fa_${randomId(16)}`;
    const refreshToken = `fr_${randomId(16)}`;
    const expiresAt = Date.now() + accessLifetimeSeconds * 1000;
    access.set(accessToken, expiresAt);
    refresh.set(refreshToken, { used: false });
    return { accessToken, refreshToken, expiresAt };
  }

  const server = createServer(async (request, response) => {
    const text = await readBody(request);
    const { pathname } = urlOf(request);
    if (request.method === 'POST' && pathname === '/oauth2/token') {
      if (request.headers.authorization !== expectedBasic) {
        json(response, 401, errors('invalid_client', 'Invalid authorization header format.'));
        return;
      }
      const form = new URLSearchParams(text);
      if (form.get('grant_type') !== 'refresh_token') {
        json(response, 400, errors('unsupported_grant_type', `The grant type is not supported. ${docs}`));
        return;
      }
      const token = form.get('refresh_token') ?? '';
      const entry = refresh.get(token);
      if (!entry || entry.used) {
        if (entry) counts.reusedRefreshTokens++;
        json(response, 400, errors('invalid_grant', `Refresh token invalid: ${token.slice(0, 4)}... ${docs}`));
        return;
      }
      entry.used = true;
      counts.refreshes++;
      const pair = issuePair();
      json(response, 200, {
        access_token: pair.accessToken,
        expires_in: accessLifetimeSeconds,
        refresh_token: pair.refreshToken,
        scope,
        token_type: 'Bearer',
        user_id: 'ABC123',
      });
      return;
    }
    if (request.method === 'GET' && pathname === '/1/user/-/profile.json') {
      const header = request.headers.authorization ?? '';
      const token = header.startsWith('Bearer ') ? header.slice(7) : '';
      const expiresAt = access.get(token);
      const challenge = { 'www-authenticate': 'Bearer realm="api.fitbit.com"' };
      if (expiresAt === undefined) {
        json(
          response,
          401,
          errors('invalid_token', `Access token invalid: ${token.slice(0, 4)}... ${docs}`),
          challenge,
        );
        return;
      }
      if (expiresAt <= Date.now()) {
        json(
          response,
          401,
          errors('expired_token', `Access token expired: ${token.slice(0, 4)}... ${docs}`),
          challenge,
        );
        return;
      }
      counts.apiCalls++;
      json(response, 200, { user: { displayName: 'Ada' } });
      return;
    }
    json(response, 404, errors('not_found', 'The API you are requesting could not be found.'));
  });
  const { url, close } = await listen(server);
  return {
    url,
    /** The token endpoint. */
    tokenURL: `${url}/oauth2/token`,
    clientId,
    clientSecret,
    /** Successful refreshes. */
    get refreshes() {
      return counts.refreshes;
    },
    /** Refresh attempts with an already-spent refresh token. */
    get reusedRefreshTokens() {
      return counts.reusedRefreshTokens;
    },
    /** Successful profile calls. */
    get apiCalls() {
      return counts.apiCalls;
    },
    /** Issues a valid pair directly, as if from an earlier authorization-code flow. */
    issuePair,
    close,
  };
}

/** A running mock Fitbit API. */
export type FitbitMock = Awaited<ReturnType<typeof startFitbit>>;
