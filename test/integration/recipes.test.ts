/**
 * The recipes in examples/recipes, as users would run them: each against a local mock that answers as the
 * real system documents (examples/recipes/mocks), with the mock's counters as the evidence. The last test
 * runs every recipe file as a script.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import { afterEach, describe, expect, it } from 'vitest';
import { fitbitClient, loadTokens } from '../../examples/recipes/fitbit.js';
import { gitHubClient, openIssues } from '../../examples/recipes/github.js';
import { insightClient, type PluginException } from '../../examples/recipes/insightconnect.js';
import { ordersClient } from '../../examples/recipes/kong.js';
import { startFitbit } from '../../examples/recipes/mocks/fitbit.js';
import { startGitHub } from '../../examples/recipes/mocks/github.js';
import { startInsightConnect } from '../../examples/recipes/mocks/insightconnect.js';
import { startKongGateway } from '../../examples/recipes/mocks/kong.js';
import { startStorageAdmin } from '../../examples/recipes/mocks/storage-admin.js';
import { startThoughtSpot } from '../../examples/recipes/mocks/thoughtspot.js';
import { startVault } from '../../examples/recipes/mocks/vault.js';
import { cacheBackedClient } from '../../examples/recipes/shared-keyv.js';
import { storageAdmin, volumes } from '../../examples/recipes/storage-admin.js';
import { thoughtSpotBearer, thoughtSpotSession } from '../../examples/recipes/thoughtspot.js';
import { vaultClient } from '../../examples/recipes/vault.js';
import { AuthError, clientCredentials, ForbiddenError, type TokenInput, UnauthorizedError } from '../../src/index.js';
import { redisTokenStore } from '../../stores/index.js';
import { startApiServer, startAuthServer } from '../../testing/index.js';
import { needs, REDIS_URL } from '../helpers/services.js';

await needs('redis');
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const search = { body: { metadata: [{ type: 'LIVEBOARD' }] } };

describe('ThoughtSpot', () => {
  it('bearer: the login carries X-Requested-By and resolves under baseURL; 6 concurrent calls, 1 token request', async () => {
    const ts = await startThoughtSpot();
    closers.push(ts.close);
    const api = thoughtSpotBearer(ts.url, { username: 'tsadmin', secretKey: 'ts-secret-key', orgId: 7 });
    closers.push(() => api.close());
    await Promise.all(Array.from({ length: 6 }, () => api.post('metadata/search', search)));
    expect(ts.tokenRequests).toBe(1);
    expect(ts.apiCalls).toBe(6);
    expect(ts.missingRequestedBy).toBe(0);
    expect(ts.lastTokenBody).toMatchObject({ username: 'tsadmin', secret_key: 'ts-secret-key', org_id: 7 });
  });

  it('cookie session: headers on the login, and a rotated JSESSIONID is followed without a new login', async () => {
    const ts = await startThoughtSpot({ rotateSessionEvery: 2 });
    closers.push(ts.close);
    const api = thoughtSpotSession(ts.url, { username: 'tsadmin', password: 'ts-password' });
    closers.push(() => api.close());
    for (let i = 0; i < 7; i++) await api.post('metadata/search', search);
    expect(ts.missingRequestedBy).toBe(0);
    expect(ts.logins).toBe(1);
    expect(ts.unauthorized).toBe(0);
    expect(ts.apiCalls).toBe(7);
  });
});

describe('GitHub', () => {
  it('all pages through Link; a 502 with a far X-RateLimit-Reset is retried at once; a secondary limit is waited out', async () => {
    const gh = await startGitHub({ issues: 95 });
    closers.push(gh.close);
    const api = gitHubClient('ghp_test', gh.url);
    closers.push(() => api.close());
    gh.inject({ kind: 'bad-gateway' });
    gh.inject({ kind: 'secondary', retryAfter: 1 });
    const numbers: number[] = [];
    for await (const issue of openIssues(api, 'octo', 'hello')) numbers.push(issue.number);
    expect(numbers).toHaveLength(95);
    expect(new Set(numbers).size).toBe(95);
    expect(gh.requests).toBe(3);
    const [first, second, third] = gh.times as [number, number, number];
    expect(second - first).toBeLessThan(900); // the 502: backoff only
    expect(third - second).toBeGreaterThanOrEqual(900); // Retry-After: 1
  });

  it('a primary limit (403, remaining 0) waits for the reset; a plain 403 is a ForbiddenError, not retried', async () => {
    const gh = await startGitHub({ issues: 5 });
    closers.push(gh.close);
    const api = gitHubClient('ghp_test', gh.url);
    closers.push(() => api.close());
    gh.inject({ kind: 'primary', resetInSeconds: 1 });
    expect(await api.paginateAll(`repos/o/r/issues`)).toHaveLength(5);
    const [first, second] = gh.times as [number, number];
    expect(second - first).toBeGreaterThanOrEqual(500);
    gh.inject({ kind: 'forbidden' });
    const before = gh.requests;
    await expect(api.get('repos/o/r/issues')).rejects.toBeInstanceOf(ForbiddenError);
    expect(gh.requests - before).toBe(1);
  });
});

it('storage admin: page/per_page until a short page', async () => {
  const admin = await startStorageAdmin({ volumes: 120 });
  closers.push(admin.close);
  const api = storageAdmin(admin.url, 'sa-key');
  closers.push(() => api.close());
  const names: string[] = [];
  for await (const volume of volumes(api)) names.push(volume.name);
  expect(names).toHaveLength(120);
  expect(new Set(names).size).toBe(120);
  expect(admin.requests).toBe(3);
});

it('Vault: renew-self before the lease ends, a new login once the max TTL refuses renewal; every read succeeds', async () => {
  const vault = await startVault({ leaseSeconds: 2, maxTtlSeconds: 4 });
  closers.push(vault.close);
  const api = vaultClient(vault.url, { roleId: 'role-1', secretId: 'secret-1' });
  closers.push(() => api.close());
  for (let i = 0; i < 16; i++) {
    await api.get('secret/data/db');
    await sleep(300);
  }
  expect(vault.reads).toBe(16);
  expect(vault.renewals).toBeGreaterThanOrEqual(1);
  expect(vault.logins).toBe(2);
});

it('Kong + upstream OAuth: the service refusal gets one new token; a gateway refusal costs no token request', async () => {
  const kong = await startKongGateway();
  closers.push(kong.close);
  const api = ordersClient({ gatewayURL: kong.url, gatewayKey: 'kong-key', ...kong });
  closers.push(() => api.close());
  expect(await api.get('orders')).toEqual([{ id: 1, total: 9.5 }]);
  kong.revokeTokens();
  expect(await api.get('orders')).toEqual([{ id: 1, total: 9.5 }]);
  expect(kong.tokenRequests).toBe(2);
  expect(kong.upstreamRefusals).toBe(1);
  kong.rotateApiKey('kong-key-2');
  const refused = await api.get('orders').catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(UnauthorizedError);
  expect((refused as UnauthorizedError).body).toEqual({ message: 'Invalid authentication credentials' });
  expect(kong.gatewayRefusals).toBe(1);
  expect(kong.tokenRequests).toBe(2);
});

it('InsightConnect-style: statuses become presets, 204 is undefined, invalid JSON is INVALID_JSON', async () => {
  const ic = await startInsightConnect();
  closers.push(ic.close);
  const call = insightClient(`${ic.url}/api/v1/`, 'ic-key');
  expect(await call((api) => api.get('jobs'))).toEqual({ data: [{ id: 'j1', status: 'running' }] });
  expect(await call((api) => api.delete('jobs/j1'))).toBeUndefined();
  const presets: Record<string, string> = {};
  for (const path of ['jobs/nope', 'forbidden', 'conflict', 'broken', 'boom']) {
    presets[path] = await call((api) => api.get(path)).then(
      () => 'none',
      (error: PluginException) => error.preset,
    );
  }
  expect(presets).toEqual({
    'jobs/nope': 'NOT_FOUND',
    forbidden: 'UNAUTHORIZED',
    conflict: 'CONFLICT',
    broken: 'INVALID_JSON',
    boom: 'SERVER_ERROR',
  });
  const unauthorized = insightClient(`${ic.url}/api/v1/`, 'wrong');
  await expect(unauthorized((api) => api.get('jobs'))).rejects.toMatchObject({ preset: 'API_KEY' });
});

describe('fitbit-style rotating refresh tokens', () => {
  it('every new pair is saved; a restart starts from it: 0 refreshes while the access token lives, 1 after, 0 reuse', async () => {
    const fitbit = await startFitbit({ accessLifetimeSeconds: 2 });
    closers.push(fitbit.close);
    const dir = await mkdtemp(join(tmpdir(), 'sluice-fitbit-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'tokens.json');
    await writeFile(file, JSON.stringify(fitbit.issuePair()));
    const app = { apiURL: fitbit.url, ...fitbit };
    const seen: (string | undefined)[] = [];
    for (const run of [1, 2, 3]) {
      if (run === 3) await sleep(1200);
      const saved = (await loadTokens(file)) as TokenInput;
      seen.push(saved.refreshToken);
      const api = fitbitClient(app, saved, file);
      await api.get('1/user/-/profile.json');
      await api.close();
      await sleep(50); // the save is a background write
    }
    expect(fitbit.refreshes).toBe(1);
    expect(fitbit.reusedRefreshTokens).toBe(0);
    expect(fitbit.apiCalls).toBe(3);
    const after = (await loadTokens(file)) as TokenInput;
    expect(after.refreshToken).not.toBe(seen[0]);
  });

  it("a spent refresh token: fitbit's { errors: [{ errorType }] } body is the AuthError's oauthError", async () => {
    const fitbit = await startFitbit({ accessLifetimeSeconds: 2 });
    closers.push(fitbit.close);
    const pair = fitbit.issuePair();
    const expired = { ...pair, expiresAt: Date.now() - 1 };
    const dir = await mkdtemp(join(tmpdir(), 'sluice-fitbit-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const first = fitbitClient({ apiURL: fitbit.url, ...fitbit }, expired, join(dir, 'a.json'));
    await first.get('1/user/-/profile.json');
    await first.close();
    // A process that did not save the new pair starts from the old one: the server refuses it.
    const stale = fitbitClient({ apiURL: fitbit.url, ...fitbit }, expired, join(dir, 'b.json'));
    closers.push(() => stale.close());
    const error = await stale.get('1/user/-/profile.json').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ status: 400, oauthError: 'invalid_grant' });
    expect((error as AuthError).oauthErrorDescription).toMatch(/^Refresh token invalid/);
  });
});

it('a shared Keyv cache: two hand-built Keyvs and a redisTokenStore client on one namespace, 1 token request', async () => {
  const auth = await startAuthServer();
  const api = await startApiServer({ auth });
  closers.push(auth.close, api.close);
  const namespace = `recipe-${process.pid}-${Date.now()}`;
  const grant = clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
  const caches = [1, 2].map(() => new Keyv({ store: new KeyvRedis(REDIS_URL), namespace }));
  const clients = caches.map((cache) => cacheBackedClient(api.url, cache, grant));
  const { createClient } = await import('../../src/index.js');
  clients.push(createClient({ baseURL: api.url, auth: { grant, ...redisTokenStore(REDIS_URL, { namespace }) } }));
  closers.push(async () => {
    for (const client of clients) await client.close();
    for (const cache of caches) await cache.disconnect();
  });
  await Promise.all(clients.map((client) => client.get('whoami')));
  await Promise.all(clients.map((client) => client.get('whoami')));
  expect(auth.counts.token).toBe(1);
});

it('every recipe file runs as a script (npx tsx examples/recipes/<file>)', async () => {
  const dir = new URL('../../examples/recipes/', import.meta.url).pathname;
  const files = readdirSync(dir).filter((name) => name.endsWith('.ts') && name !== 'run.ts');
  expect(files.length).toBeGreaterThanOrEqual(8);
  const run = promisify(execFile);
  const results = await Promise.all(
    files.map((file) =>
      run(process.execPath, ['--import', 'tsx', join(dir, file)], { timeout: 30_000, cwd: join(dir, '../..') }),
    ),
  );
  for (const [index, result] of results.entries()) {
    expect(result.stdout.length, files[index]).toBeGreaterThan(0);
    expect(result.stderr, files[index]).toBe('');
  }
}, 60_000);

it('every example in examples/ runs as a script (first request, Redis, PostgreSQL, an SDK, middleware, pino, OTel)', async () => {
  const dir = new URL('../../examples/', import.meta.url).pathname;
  const files = readdirSync(dir).filter((name) => name.endsWith('.ts') && name !== 'demo.ts' && name !== 'workload.ts');
  expect(files.length).toBeGreaterThanOrEqual(7);
  const run = promisify(execFile);
  const results = await Promise.all(
    files.map((file) =>
      run(process.execPath, ['--import', 'tsx', join(dir, file)], { timeout: 30_000, cwd: join(dir, '..') }),
    ),
  );
  for (const [index, result] of results.entries()) {
    expect(result.stdout.length, files[index]).toBeGreaterThan(0);
    expect(result.stderr, files[index]).toBe('');
  }
}, 60_000);
