/** The recipe mocks behave like the systems they stand for: auth, pagination, faults, rotation, expiry. */
import { afterEach, describe, expect, it } from 'vitest';
import { startFitbit } from '../../examples/recipes/mocks/fitbit.js';
import { startGitHub } from '../../examples/recipes/mocks/github.js';
import { startInsightConnect } from '../../examples/recipes/mocks/insightconnect.js';
import { startKongGateway } from '../../examples/recipes/mocks/kong.js';
import { startStorageAdmin } from '../../examples/recipes/mocks/storage-admin.js';
import { startThoughtSpot } from '../../examples/recipes/mocks/thoughtspot.js';
import { startVault } from '../../examples/recipes/mocks/vault.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** Registers a started mock for closing after the test. */
function track<T extends { close(): Promise<void> }>(mock: T): T {
  closers.push(() => mock.close());
  return mock;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

describe('thoughtspot', () => {
  const ts = { 'x-requested-by': 'ThoughtSpot' };

  it('issues a token that authorizes a metadata search', async () => {
    const mock = track(await startThoughtSpot());
    const bad = await post(`${mock.url}/api/rest/2.0/auth/token/full`, { username: 'tsadmin', password: 'x' }, ts);
    expect(bad.status).toBe(401);
    expect(await bad.json()).toEqual({ error: { message: 'Invalid credentials' } });
    const answer = await post(
      `${mock.url}/api/rest/2.0/auth/token/full`,
      { username: 'tsadmin', secret_key: 'ts-secret-key', validity_time_in_sec: 60 },
      ts,
    );
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as {
      token: string;
      expiration_time_in_millis: number;
      creation_time_in_millis: number;
    };
    expect(body.expiration_time_in_millis - body.creation_time_in_millis).toBe(60_000);
    expect(mock.lastTokenBody).toMatchObject({ secret_key: 'ts-secret-key' });
    const search = await post(
      `${mock.url}/api/rest/2.0/metadata/search`,
      {},
      { ...ts, authorization: `Bearer ${body.token}` },
    );
    expect(search.status).toBe(200);
    expect(await search.json()).toEqual([expect.objectContaining({ metadata_name: 'Sales' })]);
    const anonymous = await post(`${mock.url}/api/rest/2.0/metadata/search`, {}, ts);
    expect(anonymous.status).toBe(401);
    expect([mock.tokenRequests, mock.apiCalls, mock.unauthorized]).toEqual([2, 1, 1]);
  });

  it('refuses calls without X-Requested-By', async () => {
    const mock = track(await startThoughtSpot());
    const answer = await post(`${mock.url}/api/rest/2.0/auth/token/full`, {
      username: 'tsadmin',
      password: 'ts-password',
    });
    expect(answer.status).toBe(400);
    expect(await answer.json()).toEqual({ error: { message: 'X-Requested-By header is required' } });
    expect(mock.missingRequestedBy).toBe(1);
  });

  it('rotates the session cookie and kills the old one', async () => {
    const mock = track(await startThoughtSpot({ rotateSessionEvery: 2 }));
    const login = await post(
      `${mock.url}/api/rest/2.0/auth/session/login`,
      { username: 'tsadmin', password: 'ts-password' },
      ts,
    );
    expect(login.status).toBe(204);
    const cookies = login.headers.getSetCookie();
    expect(cookies).toHaveLength(2);
    const first = /JSESSIONID=([^;]+); Path=\/; HttpOnly/.exec(cookies[0] ?? '')?.[1];
    expect(first).toBeDefined();
    const search = (session: string) =>
      post(`${mock.url}/api/rest/2.0/metadata/search`, {}, { ...ts, cookie: `JSESSIONID=${session}` });
    const one = await search(first ?? '');
    expect(one.headers.get('set-cookie')).toBeNull();
    const two = await search(first ?? '');
    expect(two.status).toBe(200);
    const second = /JSESSIONID=([^;]+)/.exec(two.headers.get('set-cookie') ?? '')?.[1];
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    expect((await search(first ?? '')).status).toBe(401);
    expect((await search(second ?? '')).status).toBe(200);
    expect(mock.logins).toBe(1);
  });
});

describe('github', () => {
  const auth = { authorization: 'Bearer ghp_test' };

  it('pages issues with a Link header and rate-limit headers', async () => {
    const mock = track(await startGitHub());
    const first = await fetch(`${mock.url}/repos/o/r/issues`, { headers: auth });
    expect(first.status).toBe(200);
    expect(((await first.json()) as unknown[]).length).toBe(30);
    expect(first.headers.get('link')).toBe(
      `<${mock.url}/repos/o/r/issues?per_page=30&page=2>; rel="next", <${mock.url}/repos/o/r/issues?per_page=30&page=4>; rel="last"`,
    );
    expect(first.headers.get('x-ratelimit-resource')).toBe('core');
    expect(Number(first.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000 + 3500);
    const last = await fetch(`${mock.url}/repos/o/r/issues?per_page=30&page=4`, {
      headers: { authorization: 'token ghp_test' },
    });
    const items = (await last.json()) as Array<{ number: number }>;
    expect(items.map((item) => item.number)).toEqual([91, 92, 93, 94, 95]);
    const link = last.headers.get('link') ?? '';
    expect(link).toContain('rel="prev"');
    expect(link).toContain('rel="first"');
    expect(link).not.toContain('rel="next"');
    expect(last.headers.get('x-ratelimit-remaining')).toBe('4998');
    const bad = await fetch(`${mock.url}/repos/o/r/issues`, { headers: { authorization: 'Bearer nope' } });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ message: 'Bad credentials' });
  });

  it('serves injected faults in order, then normal answers', async () => {
    const mock = track(await startGitHub());
    mock.inject({ kind: 'bad-gateway' });
    mock.inject({ kind: 'primary', resetInSeconds: 2 });
    mock.inject({ kind: 'secondary', retryAfter: 3 });
    mock.inject({ kind: 'forbidden' });
    const get = () => fetch(`${mock.url}/repos/o/r/issues`, { headers: auth });

    const gateway = await get();
    expect(gateway.status).toBe(502);
    expect(gateway.headers.get('content-type')).toContain('text/html');
    expect(Number(gateway.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(0);
    await gateway.text();

    const primary = await get();
    expect(primary.status).toBe(403);
    expect(primary.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = Number(primary.headers.get('x-ratelimit-reset'));
    expect(reset).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 1);
    expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 2);
    expect(await primary.json()).toMatchObject({ message: 'API rate limit exceeded for user ID 1.' });

    const secondary = await get();
    expect(secondary.status).toBe(403);
    expect(secondary.headers.get('retry-after')).toBe('3');
    expect(Number(secondary.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(0);
    expect(((await secondary.json()) as { message: string }).message).toMatch(/secondary rate limit/);

    const forbidden = await get();
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('retry-after')).toBeNull();
    expect(Number(forbidden.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(0);
    expect(await forbidden.json()).toMatchObject({ message: 'Resource not accessible by personal access token' });

    expect((await get()).status).toBe(200);
    expect(mock.requests).toBe(5);
    expect(mock.times).toHaveLength(5);
  });
});

describe('storage admin', () => {
  it('pages volumes and refuses a missing key', async () => {
    const mock = track(await startStorageAdmin());
    const headers = { 'x-api-key': 'sa-key' };
    const page = await fetch(`${mock.url}/api/v2/volumes?page=3&per_page=20`, { headers });
    expect(page.headers.get('x-total-count')).toBe('47');
    const body = (await page.json()) as { items: unknown[]; page: number; per_page: number; total: number };
    expect([body.items.length, body.page, body.per_page, body.total]).toEqual([7, 3, 20, 47]);
    const past = (await (await fetch(`${mock.url}/api/v2/volumes?page=4`, { headers })).json()) as { items: unknown[] };
    expect(past.items).toEqual([]);
    const capped = (await (await fetch(`${mock.url}/api/v2/volumes?per_page=500`, { headers })).json()) as {
      per_page: number;
    };
    expect(capped.per_page).toBe(50);
    const anonymous = await fetch(`${mock.url}/api/v2/volumes`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ error: 'unauthorized' });
    expect(mock.requests).toBe(4);
  });
});

describe('vault', () => {
  it('logs in, reads and refuses bad credentials', async () => {
    const mock = track(await startVault());
    const bad = await post(`${mock.url}/v1/auth/approle/login`, { role_id: 'role-1', secret_id: 'nope' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ errors: ['invalid role or secret ID'] });
    const login = await post(`${mock.url}/v1/auth/approle/login`, { role_id: 'role-1', secret_id: 'secret-1' });
    const { auth } = (await login.json()) as { auth: { client_token: string; lease_duration: number } };
    expect(auth.client_token).toMatch(/^hvs\./);
    expect(auth.lease_duration).toBe(2);
    const read = await fetch(`${mock.url}/v1/secret/data/db`, { headers: { 'x-vault-token': auth.client_token } });
    expect(await read.json()).toMatchObject({ data: { data: { password: 'db-pass' }, metadata: { version: 1 } } });
    expect((await fetch(`${mock.url}/v1/secret/data/db`)).status).toBe(403);
    expect([mock.logins, mock.reads, mock.denied]).toEqual([2, 1, 1]);
  });

  it('renews a token until its max TTL, then denies it', async () => {
    const mock = track(await startVault({ leaseSeconds: 1, maxTtlSeconds: 2 }));
    const login = await post(`${mock.url}/v1/auth/approle/login`, { role_id: 'role-1', secret_id: 'secret-1' });
    const token = ((await login.json()) as { auth: { client_token: string } }).auth.client_token;
    const headers = { 'x-vault-token': token };
    await sleep(700);
    const renewed = await fetch(`${mock.url}/v1/auth/token/renew-self`, { method: 'POST', headers });
    expect(renewed.status).toBe(200);
    expect(await renewed.json()).toMatchObject({ auth: { client_token: token, lease_duration: 1 } });
    await sleep(700);
    expect((await fetch(`${mock.url}/v1/secret/data/db`, { headers })).status).toBe(200);
    const denied = await fetch(`${mock.url}/v1/auth/token/renew-self`, { method: 'POST', headers });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({ errors: ['permission denied'] });
    expect((await fetch(`${mock.url}/v1/secret/data/db`, { headers })).status).toBe(403);
    expect(mock.renewals).toBe(1);
  });
});

describe('kong', () => {
  async function token(mock: { tokenURL: string; clientId: string; clientSecret: string }): Promise<string> {
    const answer = await fetch(mock.tokenURL, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: mock.clientId,
        client_secret: mock.clientSecret,
      }),
    });
    return ((await answer.json()) as { access_token: string }).access_token;
  }

  it('tells a gateway key refusal from an upstream bearer refusal', async () => {
    const mock = track(await startKongGateway());
    const bearer = { authorization: `Bearer ${await token(mock)}` };
    const missing = await fetch(`${mock.url}/orders`, { headers: bearer });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Key realm="kong"');
    expect(await missing.json()).toEqual({ message: 'No API key found in request' });
    const wrong = await fetch(`${mock.url}/orders`, { headers: { ...bearer, apikey: 'nope' } });
    expect(await wrong.json()).toEqual({ message: 'Invalid authentication credentials' });
    const ok = await fetch(`${mock.url}/orders`, { headers: { ...bearer, apikey: 'kong-key' } });
    expect(await ok.json()).toEqual([{ id: 1, total: 9.5 }]);
    const badBearer = await fetch(`${mock.url}/orders`, { headers: { authorization: 'Bearer x', apikey: 'kong-key' } });
    expect(badBearer.status).toBe(401);
    expect(badBearer.headers.get('www-authenticate')).toBe('Bearer realm="orders", error="invalid_token"');
    expect(await badBearer.json()).toEqual({ error: 'invalid_token' });
    expect([mock.gatewayRefusals, mock.upstreamRefusals, mock.tokenRequests]).toEqual([2, 1, 1]);
  });

  it('refuses a rotated key and revoked tokens', async () => {
    const mock = track(await startKongGateway());
    const bearer = { authorization: `Bearer ${await token(mock)}` };
    mock.rotateApiKey('kong-key-2');
    expect((await fetch(`${mock.url}/orders`, { headers: { ...bearer, apikey: 'kong-key' } })).status).toBe(401);
    expect((await fetch(`${mock.url}/orders`, { headers: { ...bearer, apikey: 'kong-key-2' } })).status).toBe(200);
    mock.revokeTokens();
    const revoked = await fetch(`${mock.url}/orders`, { headers: { ...bearer, apikey: 'kong-key-2' } });
    expect(await revoked.json()).toEqual({ error: 'invalid_token' });
    const fresh = { authorization: `Bearer ${await token(mock)}`, apikey: 'kong-key-2' };
    expect((await fetch(`${mock.url}/orders`, { headers: fresh })).status).toBe(200);
    expect([mock.gatewayRefusals, mock.upstreamRefusals]).toEqual([1, 1]);
  });
});

describe('insightconnect', () => {
  it('answers job routes and refuses a missing key', async () => {
    const mock = track(await startInsightConnect());
    const headers = { 'x-api-key': 'ic-key' };
    expect(await (await fetch(`${mock.url}/api/v1/jobs`, { headers })).json()).toEqual({
      data: [{ id: 'j1', status: 'running' }],
    });
    expect((await fetch(`${mock.url}/api/v1/jobs/j1`, { headers })).status).toBe(200);
    const missing = await fetch(`${mock.url}/api/v1/jobs/j9`, { headers });
    expect([missing.status, await missing.json()]).toEqual([404, { message: 'Job not found' }]);
    const deleted = await fetch(`${mock.url}/api/v1/jobs/j1`, { method: 'DELETE', headers });
    expect([deleted.status, await deleted.text()]).toEqual([204, '']);
    const anonymous = await fetch(`${mock.url}/api/v1/jobs`);
    expect([anonymous.status, await anonymous.json()]).toEqual([401, { message: 'Unauthorized' }]);
    expect(mock.requests).toBe(5);
  });

  it('fails on purpose on the error routes', async () => {
    const mock = track(await startInsightConnect());
    const headers = { 'x-api-key': 'ic-key' };
    const broken = await fetch(`${mock.url}/api/v1/broken`, { headers });
    expect(broken.status).toBe(200);
    expect(broken.headers.get('content-type')).toBe('application/json');
    await expect(broken.json()).rejects.toThrow(SyntaxError);
    const cases: Array<[string, number, string]> = [
      ['forbidden', 403, 'Insufficient permissions'],
      ['conflict', 409, 'Job already running'],
      ['boom', 500, 'Internal error'],
      ['boom', 500, 'Internal error'],
    ];
    for (const [path, status, message] of cases) {
      const answer = await fetch(`${mock.url}/api/v1/${path}`, { headers });
      expect([answer.status, await answer.json()]).toEqual([status, { message }]);
    }
  });
});

describe('fitbit', () => {
  function refresh(mock: { tokenURL: string }, refreshToken: string, basic = 'fitbit-app:fitbit-secret') {
    return fetch(mock.tokenURL, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(basic).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
  }

  it('rotates refresh tokens and reports reuse', async () => {
    const mock = track(await startFitbit());
    const pair = mock.issuePair();
    const answer = await refresh(mock, pair.refreshToken);
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { access_token: string; refresh_token: string };
    expect(body).toMatchObject({ token_type: 'Bearer', user_id: 'ABC123', expires_in: 2 });
    expect(body.refresh_token).not.toBe(pair.refreshToken);
    const reused = await refresh(mock, pair.refreshToken);
    expect(reused.status).toBe(400);
    const error = (await reused.json()) as { errors: Array<{ errorType: string; message: string }>; success: boolean };
    expect(error.success).toBe(false);
    expect(error.errors[0]?.errorType).toBe('invalid_grant');
    expect(error.errors[0]?.message).toMatch(
      new RegExp(`^Refresh token invalid: ${pair.refreshToken.slice(0, 4)}\\.\\.\\. `),
    );
    const badClient = await refresh(mock, body.refresh_token, 'fitbit-app:wrong');
    expect(badClient.status).toBe(401);
    expect(await badClient.json()).toMatchObject({ errors: [{ errorType: 'invalid_client' }], success: false });
    expect((await refresh(mock, body.refresh_token)).status).toBe(200);
    expect([mock.refreshes, mock.reusedRefreshTokens]).toEqual([2, 1]);
  });

  it('tells expired access tokens from unknown ones', async () => {
    const mock = track(await startFitbit({ accessLifetimeSeconds: 0.3 }));
    const pair = mock.issuePair();
    const profile = (token: string) =>
      fetch(`${mock.url}/1/user/-/profile.json`, { headers: { authorization: `Bearer ${token}` } });
    expect(await (await profile(pair.accessToken)).json()).toEqual({ user: { displayName: 'Ada' } });
    await sleep(350);
    const expired = await profile(pair.accessToken);
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toBe('Bearer realm="api.fitbit.com"');
    expect(await expired.json()).toMatchObject({ errors: [{ errorType: 'expired_token' }], success: false });
    const unknown = await profile('nope');
    expect(await unknown.json()).toMatchObject({ errors: [{ errorType: 'invalid_token' }], success: false });
    expect(mock.apiCalls).toBe(1);
  });
});
