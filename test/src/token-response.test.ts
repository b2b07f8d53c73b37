/** Token responses and token requests on the wire, against a real local token endpoint. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthError,
  apiKey,
  basicAuth,
  ConfigError,
  clientCredentials,
  createClient,
  customGrant,
  refreshTokenGrant,
  staticToken,
  undiciTransport,
} from '../../src/index.js';
import { createTokenFetch, parseTokenResponse, toTokenSet } from '../../src/internals.js';
import { json, type Seen, startServer } from '../helpers/server.js';

let answer: (request: Seen) => { status: number; body: unknown; headers?: Record<string, string> } = () => ({
  status: 200,
  body: {},
});
let tokenServer: Awaited<ReturnType<typeof startServer>>;
let api: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  tokenServer = await startServer((request, response) => {
    const { status, body, headers } = answer(request);
    if (typeof body === 'string') {
      response.writeHead(status, { 'content-type': 'text/plain', ...headers });
      response.end(body);
    } else json(response, status, body, headers);
  });
  api = await startServer((request, response) =>
    json(response, 200, { authorization: request.headers.authorization ?? null, url: request.url }),
  );
});
afterAll(async () => {
  await tokenServer.close();
  await api.close();
});

const grant = (extra: Partial<Parameters<typeof clientCredentials>[0]> = {}) =>
  clientCredentials({
    tokenURL: `${tokenServer.url}/token`,
    clientId: 'my client',
    clientSecret: 's3cret:+/',
    ...extra,
  });

async function failure(body: unknown, status = 200, headers?: Record<string, string>): Promise<AuthError> {
  answer = () => ({ status, body, ...(headers ? { headers } : {}) });
  const client = createClient({ baseURL: api.url, auth: { grant: grant() } });
  const error = await client.get('x').catch((caught: unknown) => caught);
  await client.close();
  expect(error).toBeInstanceOf(AuthError);
  const shown = `${(error as Error).message} ${JSON.stringify(error)}`;
  expect(shown).not.toContain('s3cret');
  return error as AuthError;
}

describe('token responses become AuthError, never a secret', () => {
  it('missing access_token', async () => {
    expect((await failure({ token_type: 'Bearer', expires_in: 60 })).message).toMatch(/no access token/);
  });
  it('non-numeric and negative expires_in', async () => {
    expect((await failure({ access_token: 'a', expires_in: 'soon' })).message).toMatch(/expires_in/);
    expect((await failure({ access_token: 'a', expires_in: -5 })).message).toMatch(/expires_in/);
  });
  it('a body that is not JSON', async () => {
    expect((await failure('<html>oops</html>', 200)).message).toMatch(/not JSON/);
  });
  it('an RFC 6749 error response keeps the OAuth code and description', async () => {
    const error = await failure(
      { error: 'invalid_client', error_description: 'client_secret=s3cret:+/ is wrong' },
      401,
    );
    expect(error.oauthError).toBe('invalid_client');
    expect(error.oauthErrorDescription).toMatch(/is wrong/);
    expect(error.oauthErrorDescription).not.toContain('s3cret');
    expect(error.code).toBe('AUTH_INVALID_CLIENT');
  });
  it('a token with CR/LF/NUL is rejected without being echoed', async () => {
    const error = await failure({ access_token: 'evil\r\nX-Injected: 1', expires_in: 60 });
    expect(error.code).toBe('AUTH_INVALID_TOKEN');
    expect(error.message).not.toContain('evil');
  });
  it('a response over the size cap is rejected', async () => {
    const error = await failure({ access_token: 'a', padding: 'x'.repeat(70_000) });
    expect(error.code).toBe('AUTH_RESPONSE_TOO_LARGE');
  });
});

describe('token requests', () => {
  it('send client credentials with Basic (form-encoded per RFC 6749) and scope/audience/resource', async () => {
    answer = () => ({ status: 200, body: { access_token: 'at-1', expires_in: 60 } });
    const before = tokenServer.seen.length;
    const client = createClient({
      baseURL: api.url,
      auth: { grant: grant({ scope: 'a b', audience: 'aud', resource: 'https://r' }) },
    });
    await expect(client.get('x')).resolves.toMatchObject({ authorization: 'Bearer at-1' });
    await client.close();
    const seen = tokenServer.seen[before]!;
    const basic = Buffer.from(String(seen.headers.authorization).slice(6), 'base64').toString();
    expect(basic).toBe('my+client:s3cret%3A%2B%2F');
    const form = new URLSearchParams(seen.body.toString());
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'client_credentials',
      scope: 'a b',
      audience: 'aud',
      resource: 'https://r',
    });
  });

  it("authMethod 'body' puts the credentials in the form", async () => {
    answer = () => ({ status: 200, body: { access_token: 'at-2', expires_in: 60 } });
    const before = tokenServer.seen.length;
    const client = createClient({ baseURL: api.url, auth: { grant: grant({ authMethod: 'body' }) } });
    await client.get('x');
    await client.close();
    const seen = tokenServer.seen[before]!;
    expect(seen.headers.authorization).toBeUndefined();
    expect(new URLSearchParams(seen.body.toString()).get('client_secret')).toBe('s3cret:+/');
  });

  it('retries 5xx a bounded number of times, never 4xx', async () => {
    let calls = 0;
    answer = () =>
      ++calls < 3 ? { status: 503, body: { error: 'busy' } } : { status: 200, body: { access_token: 'at-3' } };
    const fetch = createTokenFetch(undiciTransport());
    const ok = await fetch(`${tokenServer.url}/token`, { method: 'POST', body: 'x' });
    expect(ok.status).toBe(200);
    expect(calls).toBe(3);
    calls = 0;
    answer = () => {
      calls++;
      return { status: 400, body: { error: 'invalid_grant' } };
    };
    const rejected = await fetch(`${tokenServer.url}/token`, { method: 'POST', body: 'x' });
    expect(rejected.status).toBe(400);
    expect(calls).toBe(1);
    calls = 0;
    answer = () => {
      calls++;
      return { status: 500, body: {} };
    };
    const exhausted = await fetch(`${tokenServer.url}/token`, { method: 'POST', body: 'x' });
    expect(exhausted.status).toBe(500);
    expect(calls).toBe(3);
  });

  it('a missing expires_in falls back to defaultLifetime', () => {
    const input = parseTokenResponse(200, 'application/json', JSON.stringify({ access_token: 'a' }));
    const tokens = toTokenSet(input, 1, 120_000, 1_000);
    expect(tokens.expiresAt).toBe(121_000);
    expect(tokens.tokenType).toBe('Bearer');
  });

  it('refreshTokenGrant seeds from its refresh token', async () => {
    answer = (request) => ({
      status: 200,
      body: {
        access_token: `from-${new URLSearchParams(request.body.toString()).get('refresh_token')}`,
        refresh_token: 'rt-next',
      },
    });
    const client = createClient({
      baseURL: api.url,
      auth: {
        grant: refreshTokenGrant({ tokenURL: `${tokenServer.url}/token`, clientId: 'c', refreshToken: 'rt-seed' }),
      },
    });
    await expect(client.get('x')).resolves.toMatchObject({ authorization: 'Bearer from-rt-seed' });
    await client.close();
  });
});

describe('static credentials and custom grants', () => {
  it('a personal access token, an API key in a header or the query, HTTP Basic', async () => {
    const cases = [
      {
        grant: staticToken('pat-123'),
        check: (body: { authorization: string | null; url: string }) => body.authorization === 'Bearer pat-123',
      },
      { grant: staticToken('t', { header: 'x-vault-token' }), check: (body: { url: string }) => body.url === '/x' },
      { grant: apiKey('k-1', { query: 'api_key' }), check: (body: { url: string }) => body.url === '/x?api_key=k-1' },
      {
        grant: basicAuth('bob', 'pw'),
        check: (body: { authorization: string | null }) =>
          body.authorization === `Basic ${Buffer.from('bob:pw').toString('base64')}`,
      },
    ];
    for (const { grant: credential, check } of cases) {
      const client = createClient({ baseURL: api.url, auth: { grant: credential } });
      const body = await client.get<{ authorization: string | null; url: string }>('x');
      expect(check(body), JSON.stringify(body)).toBe(true);
      await client.close();
    }
    const vault = createClient({ baseURL: api.url, auth: { grant: apiKey('vault-1', { header: 'X-Vault-Token' }) } });
    await vault.get('x');
    expect(api.seen.at(-1)!.headers['x-vault-token']).toBe('vault-1');
    await vault.close();
  });

  it('auth: false on a call sends no credential', async () => {
    const client = createClient({ baseURL: api.url, auth: { grant: staticToken('pat-9') } });
    await expect(client.get('x', { auth: false })).resolves.toMatchObject({ authorization: null });
    await client.close();
  });

  it('bad static credentials and grants fail at construction', () => {
    expect(() => staticToken('')).toThrow(ConfigError);
    expect(() => apiKey('a\nb')).toThrow(ConfigError);
    expect(() => basicAuth('a:b', 'c')).toThrow(ConfigError);
    expect(() => clientCredentials({ tokenURL: 'nope', clientId: 'a', clientSecret: 'b' })).toThrow(ConfigError);
    expect(() => clientCredentials({ tokenURL: 'https://x', clientId: '', clientSecret: 'b' })).toThrow(
      /clientId is required/,
    );
    expect(() => customGrant({ id: '', obtain: async () => ({ accessToken: 'x' }) })).toThrow(ConfigError);
    expect(() => createClient({ auth: { grant: staticToken('x') } })).toThrow(/needs baseURL or auth.origins/);
  });
});
