/**
 * ThoughtSpot REST API v2.0: a bearer token from `auth/token/full` (user name and secret key or password),
 * or a session cookie from `auth/session/login`. Every call, logins included, needs `X-Requested-By`.
 * Run it against a local mock: `npx tsx examples/recipes/thoughtspot.ts`.
 */
import { AuthError, cookieSession, createClient, customGrant } from 'sluice';
import { isMain } from './run.js';

const requestedBy = { 'X-Requested-By': 'ThoughtSpot' };

/** Bearer: one full-access token per user and org, shared by every request and obtained again when it ends. */
export function thoughtSpotBearer(host: string, user: { username: string; secretKey: string; orgId?: number }) {
  return createClient({
    baseURL: `${host}/api/rest/2.0/`,
    headers: requestedBy,
    auth: {
      grant: customGrant({
        id: `thoughtspot:${host}:${user.orgId ?? 0}:${user.username}`,
        async obtain({ fetch }) {
          // A path, resolved against baseURL; the client's X-Requested-By goes with it.
          const response = await fetch('auth/token/full', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              username: user.username,
              secret_key: user.secretKey,
              org_id: user.orgId,
              validity_time_in_sec: 3600,
            }),
          });
          if (!response.ok) throw new AuthError(`ThoughtSpot login failed (${response.status})`);
          const body = (await response.json()) as { token: string; expiration_time_in_millis: number };
          return { accessToken: body.token, expiresAt: body.expiration_time_in_millis };
        },
      }),
    },
  });
}

/** Session cookie: JSESSIONID from a login, sent as `Cookie`, followed when ThoughtSpot rotates it. */
export function thoughtSpotSession(host: string, user: { username: string; password: string }) {
  return createClient({
    baseURL: `${host}/api/rest/2.0/`,
    headers: requestedBy,
    auth: {
      grant: cookieSession({
        id: `thoughtspot:${host}:${user.username}`,
        loginURL: 'auth/session/login',
        body: { username: user.username, password: user.password, remember_me: false },
        cookies: ['JSESSIONID'],
      }),
    },
  });
}

// ---- run it against the local mock ----
if (isMain(import.meta.url)) {
  const { startThoughtSpot } = await import('./mocks/thoughtspot.js');
  const ts = await startThoughtSpot({ rotateSessionEvery: 2 });
  await using bearer = thoughtSpotBearer(ts.url, { username: 'tsadmin', secretKey: 'ts-secret-key' });
  await using session = thoughtSpotSession(ts.url, { username: 'tsadmin', password: 'ts-password' });
  const search = { metadata: [{ type: 'LIVEBOARD' }] };
  console.log('bearer:', await bearer.post('metadata/search', { body: search }));
  for (let i = 0; i < 3; i++) await session.post('metadata/search', { body: search });
  console.log(`token requests ${ts.tokenRequests}, logins ${ts.logins}, calls ${ts.apiCalls}`);
  await ts.close();
}
