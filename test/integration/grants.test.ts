/** Each grant against the local OAuth server and API (examples/servers.ts). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthError, cookieSession, createClient, customGrant, passwordGrant } from '../../src/index.js';
import { type ApiServer, type AuthServer, startApiServer, startAuthServer } from '../../testing/index.js';

let auth: AuthServer;
let api: ApiServer;
beforeAll(async () => {
  auth = await startAuthServer({ refreshTokens: true });
  api = await startApiServer({ auth });
});
afterAll(async () => {
  await api.close();
  await auth.close();
});

describe('grants', () => {
  it('a custom login endpoint: POST auth/token/full -> { token, expiration_time_in_millis }', async () => {
    const login = (password: string) =>
      customGrant({
        id: 'acme-login:org-42:alice',
        async obtain({ fetch }) {
          const response = await fetch(`${auth.url}/auth/token/full`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ username: 'alice', password, validity_time_in_sec: 600, org_id: 42 }),
          });
          if (!response.ok) throw new AuthError(`login failed with ${response.status}`, { status: response.status });
          const { token, expiration_time_in_millis } = (await response.json()) as {
            token: string;
            expiration_time_in_millis: number;
          };
          return { accessToken: token, expiresAt: expiration_time_in_millis };
        },
      });
    const client = createClient({ baseURL: api.url, auth: { grant: login('wonderland') } });
    await expect(client.get('whoami')).resolves.toEqual({ scope: '42' });
    const tokens = await client.auth!.token();
    expect(tokens.expiresAt).toBeGreaterThan(Date.now() + 590_000);
    // A 401 logs in again, once.
    const before = auth.counts.login;
    auth.revokeAll();
    await expect(client.get('items/1')).resolves.toMatchObject({ id: '1' });
    expect(auth.counts.login).toBe(before + 1);
    await client.close();
    const wrong = createClient({ baseURL: api.url, auth: { grant: login('nope') } });
    const error = await wrong.get('items/1').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).status).toBe(401);
    await wrong.close();
  });

  it('a cookie session: sent as Cookie, obtained again after a 401', async () => {
    const client = createClient({
      baseURL: api.url,
      auth: {
        grant: cookieSession({ loginURL: `${auth.url}/login`, body: { username: 'alice', password: 'wonderland' } }),
      },
    });
    await expect(client.get('items/1')).resolves.toMatchObject({ id: '1' });
    const tokens = await client.auth!.token();
    expect(tokens.tokenType).toBe('cookie');
    expect(tokens.accessToken).toMatch(/^SESSIONID=at_/);
    const logins = auth.counts.login;
    auth.revokeAll();
    await expect(client.get('items/2')).resolves.toMatchObject({ id: '2' });
    expect(auth.counts.login).toBe(logins + 1);
    await client.close();
  });

  it('password grant refreshes with the rotated refresh token, never the old one', async () => {
    const client = createClient({
      baseURL: api.url,
      auth: {
        grant: passwordGrant({
          tokenURL: auth.tokenURL,
          clientId: 'app',
          clientSecret: 'app-secret',
          username: 'alice',
          password: 'wonderland',
        }),
      },
    });
    await client.get('items/1');
    const first = await client.auth!.token();
    for (let i = 0; i < 3; i++) {
      auth.revokeAll();
      await client.get(`items/${i}`);
    }
    const last = await client.auth!.token();
    expect(last.generation).toBe(first.generation + 3);
    expect(last.refreshToken).not.toBe(first.refreshToken);
    expect(auth.counts.reuse).toBe(0);
    await client.close();
  });
});
