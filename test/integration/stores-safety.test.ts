/** Secrets at rest, corrupt entries, unreachable stores, and the rules that protect rotating refresh tokens. */
import { createClient as createRedis } from '@keyv/redis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clientCredentials,
  createClient,
  type Lock,
  passwordGrant,
  refreshTokenGrant,
  type SluiceEvent,
  StoreUnavailableError,
} from '../../src/index.js';
import { tokenKey } from '../../src/internals.js';
import { postgresTokenStore, redisTokenStore } from '../../stores/index.js';
import { type ApiServer, type AuthServer, startApiServer, startAuthServer } from '../../testing/index.js';
import { needs, POSTGRES_URL, REDIS_URL } from '../helpers/services.js';

const redis = await needs('redis');
const postgres = await needs('postgres');
let auth: AuthServer;
let api: ApiServer;
beforeAll(async () => {
  auth = await startAuthServer({
    refreshTokens: true,
    clients: { app: 'client-secret-value' },
    users: { alice: 'password-value' },
  });
  api = await startApiServer({ auth });
});
afterAll(async () => {
  await api.close();
  await auth.close();
});

const grant = (scope: string) =>
  passwordGrant({
    tokenURL: auth.tokenURL,
    clientId: 'app',
    clientSecret: 'client-secret-value',
    username: 'alice',
    password: 'password-value',
    scope,
  });

describe.runIf(redis)('Redis at rest', () => {
  it('with encryption on, a raw read finds no token; key names hold no secret in any mode', async () => {
    const namespace = `rest-${process.pid}-${Date.now()}`;
    const raw = createRedis({ url: REDIS_URL });
    await raw.connect();
    try {
      for (const encryptionKey of ['a-long-passphrase', undefined]) {
        const shared = redisTokenStore(REDIS_URL, { namespace, ...(encryptionKey ? { encryptionKey } : {}) });
        const client = createClient({
          baseURL: api.url,
          auth: { grant: grant(`scope-${encryptionKey ?? 'plain'}`), ...shared },
        });
        await client.get('items/1');
        const tokens = await client.auth!.token();
        const keys = await raw.keys(`${namespace}*`);
        expect(keys.length).toBeGreaterThan(0);
        for (const key of keys) expect(key).not.toMatch(/client-secret|password|alice|at_|rt_/);
        const values = (
          await Promise.all(keys.filter((key) => !key.includes(':lock:')).map((key) => raw.get(key)))
        ).join('\n');
        if (encryptionKey) {
          expect(values).not.toContain(tokens.accessToken);
          expect(values).not.toContain(tokens.refreshToken!);
          expect(values).toContain('A256GCM');
        } else {
          // Without encryption the entry is readable: the control that the raw read sees the real data.
          expect(values).toContain(tokens.accessToken);
        }
        await client.close();
        await shared.close();
        await raw.del(keys);
      }
    } finally {
      await raw.close();
    }
  });

  it('a corrupt or foreign entry is ignored, reported and replaced', async () => {
    const namespace = `corrupt-${process.pid}-${Date.now()}`;
    const shared = redisTokenStore(REDIS_URL, { namespace });
    const events: SluiceEvent[] = [];
    const theGrant = grant('corrupt');
    await shared.store.set(tokenKey(theGrant), { v: 99, accessToken: 'garbage\n', generation: 'x' }, 60_000);
    const before = auth.counts.token;
    const client = createClient({
      baseURL: api.url,
      auth: { grant: theGrant, ...shared },
      onEvent: (event) => events.push(event),
    });
    await client.get('items/1');
    expect(events.some((event) => event.type === 'token' && event.action === 'store-entry-ignored')).toBe(true);
    expect(auth.counts.token).toBe(before + 1);
    const replaced = (await shared.store.get(tokenKey(theGrant))) as { v: number; generation: number };
    expect(replaced.v).toBe(1);
    expect(replaced.generation).toBeGreaterThanOrEqual(1);
    await client.close();
    await shared.close();
  });

  it('a non-JSON value under the key is ignored and replaced, and never quoted in an error or event', async () => {
    const namespace = `nonjson-${process.pid}-${Date.now()}`;
    const shared = redisTokenStore(REDIS_URL, { namespace });
    const theGrant = grant('nonjson');
    const raw = createRedis({ url: REDIS_URL });
    await raw.connect();
    await raw.set(`${namespace}::${tokenKey(theGrant)}`, 'rt_stored_refresh_secret not json {');
    await raw.close();
    const events: SluiceEvent[] = [];
    const client = createClient({
      baseURL: api.url,
      auth: { grant: theGrant, ...shared },
      onEvent: (e) => events.push(e),
    });
    await expect(client.get('items/1')).resolves.toBeDefined();
    expect(events.some((event) => event.type === 'token' && event.action === 'store-entry-ignored')).toBe(true);
    expect(JSON.stringify(events)).not.toContain('rt_stored_refresh_secret');
    expect(((await shared.store.get(tokenKey(theGrant))) as { v: number }).v).toBe(1);
    await client.close();
    await shared.close();
  });

  it("an entry copied from one credential's key to another's is foreign there: ignored, not used", async () => {
    const namespace = `copied-${process.pid}-${Date.now()}`;
    const shared = redisTokenStore(REDIS_URL, { namespace });
    const alice = grant('alice');
    const bob = grant('bob');
    const first = createClient({ baseURL: api.url, auth: { grant: alice, store: shared.store, lock: shared.lock } });
    const aliceToken = await first.auth!.token();
    await first.close();
    await shared.store.set(tokenKey(bob), await shared.store.get(tokenKey(alice)), 60_000);
    const second = createClient({ baseURL: api.url, auth: { grant: bob, store: shared.store, lock: shared.lock } });
    const bobToken = await second.auth!.token();
    expect(bobToken.accessToken).not.toBe(aliceToken.accessToken);
    await second.close();
    await shared.close();
  });

  it('two configurations that differ only in extraParams (a tenant) have their own keys and tokens', () => {
    const base = { tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'client-secret-value' };
    const one = clientCredentials({ ...base, extraParams: { organization: 'org-1' } });
    const two = clientCredentials({ ...base, extraParams: { organization: 'org-2' } });
    expect(tokenKey(one)).not.toBe(tokenKey(two));
    expect(tokenKey(clientCredentials(base))).not.toBe(tokenKey(one));
  });

  it('an encrypted entry tampered with is rejected and replaced', async () => {
    const namespace = `tamper-${process.pid}-${Date.now()}`;
    const shared = redisTokenStore(REDIS_URL, { namespace, encryptionKey: 'key-one' });
    const theGrant = grant('tamper');
    const first = createClient({ baseURL: api.url, auth: { grant: theGrant, store: shared.store, lock: shared.lock } });
    const original = await first.auth!.token();
    await first.close();
    const raw = createRedis({ url: REDIS_URL });
    await raw.connect();
    const [key] = (await raw.keys(`${namespace}*`)).filter((name) => !name.includes(':lock:'));
    const stored = await raw.get(key!);
    await raw.set(
      key!,
      stored!.replace(/"data\\?":\\?"(.)/, (match, char: string) => match.slice(0, -1) + (char === 'A' ? 'B' : 'A')),
    );
    await raw.close();
    const events: SluiceEvent[] = [];
    const second = createClient({
      baseURL: api.url,
      auth: { grant: theGrant, store: shared.store, lock: shared.lock },
      onEvent: (event) => events.push(event),
    });
    const next = await second.auth!.token();
    expect(next.accessToken).not.toBe(original.accessToken);
    expect(events.some((event) => event.type === 'token' && event.action === 'store-entry-ignored')).toBe(true);
    // Key rotation: a store opened with a new key first and the old one second still reads it.
    const rotated = redisTokenStore(REDIS_URL, { namespace, encryptionKey: ['key-two', 'key-one'] });
    const third = createClient({
      baseURL: api.url,
      auth: { grant: theGrant, store: rotated.store, lock: rotated.lock },
    });
    expect((await third.auth!.token()).accessToken).toBe(next.accessToken);
    await Promise.all([second.close(), third.close(), shared.close(), rotated.close()]);
  });
});

describe.runIf(redis)('a refresh slower than the lock TTL', () => {
  it('keeps its lock alive: the other process waits instead of reusing the refresh token', async () => {
    let slow = false;
    const slowAuth = await startAuthServer({
      refreshTokens: true,
      reuseDetection: true,
      async onTokenRequest(form) {
        if (slow && form.get('grant_type') === 'refresh_token')
          await new Promise((resolve) => setTimeout(resolve, 1000));
      },
    });
    const slowApi = await startApiServer({ auth: slowAuth });
    const namespace = `heartbeat-${process.pid}-${Date.now()}`;
    // Two stores on separate connections: two processes, as far as Redis can tell.
    const [one, two] = [redisTokenStore(REDIS_URL, { namespace }), redisTokenStore(REDIS_URL, { namespace })];
    const make = (shared: typeof one) =>
      createClient({
        baseURL: slowApi.url,
        auth: {
          grant: passwordGrant({
            tokenURL: slowAuth.tokenURL,
            clientId: 'app',
            clientSecret: 'app-secret',
            username: 'alice',
            password: 'wonderland',
          }),
          store: shared.store,
          lock: shared.lock,
          lockTtl: 300,
        },
      });
    const [a, b] = [make(one), make(two)];
    await a.get('items/1');
    await b.get('items/1');
    expect(slowAuth.counts.token).toBe(1);
    slow = true;
    slowAuth.revokeAll();
    const results = await Promise.allSettled([a.get('items/2'), b.get('items/3')]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(slowAuth.counts.refresh).toBe(1);
    expect(slowAuth.counts.reuse).toBe(0);
    await Promise.all([a.close(), b.close(), one.close(), two.close(), slowApi.close(), slowAuth.close()]);
  });
});

describe.runIf(postgres)('PostgreSQL at rest', () => {
  it('with encryption on, a raw read finds no token; key names hold no secret', async () => {
    const namespace = `rest-${process.pid}-${Date.now()}`;
    const shared = postgresTokenStore(POSTGRES_URL, { namespace, encryptionKey: 'pg-passphrase' });
    const client = createClient({ baseURL: api.url, auth: { grant: grant('pg'), ...shared } });
    const tokens = await client.auth!.token();
    const pool = new pg.Pool({ connectionString: POSTGRES_URL });
    const { rows } = await pool.query<{ key: string; value: string }>(
      'SELECT key, value FROM sluice_tokens WHERE key LIKE $1',
      [`${namespace}%`],
    );
    expect(rows.length).toBe(1);
    expect(rows[0]!.key).not.toMatch(/client-secret|password|alice|at_|rt_/);
    expect(rows[0]!.value).not.toContain(tokens.accessToken);
    expect(rows[0]!.value).not.toContain(tokens.refreshToken!);
    expect(rows[0]!.value).toContain('A256GCM');
    await pool.query('DELETE FROM sluice_tokens WHERE key LIKE $1', [`${namespace}%`]);
    await pool.end();
    await client.close();
    await shared.close();
  });
});

describe('an unreachable store', () => {
  it('fails a read with StoreUnavailableError within its deadline, never as "no token"', async () => {
    const shared = redisTokenStore('redis://127.0.0.1:1', { timeoutMs: 300 });
    const started = Date.now();
    const error = await shared.store.get('anything').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(1500);
    await shared.close();
  });

  it('lets a grant that can re-authenticate go on locally, with one warning', async () => {
    const shared = redisTokenStore('redis://127.0.0.1:1', { timeoutMs: 200 });
    const warnings: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn: (_: object, message?: string) => warnings.push(message ?? ''),
      error() {},
    };
    const client = createClient({
      baseURL: api.url,
      logger,
      auth: {
        grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'client-secret-value' }),
        ...shared,
      },
    });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client.get<{ id: string }>(`items/${i}`)));
    expect(results).toHaveLength(20);
    auth.revokeAll();
    await client.get('items/after-revocation');
    expect(warnings.filter((line) => line.includes('store-unavailable'))).toHaveLength(1);
    await client.close();
    await shared.close();
  });

  it('never uses a rotating refresh token without the lock: StoreUnavailableError instead', async () => {
    const shared = redisTokenStore('redis://127.0.0.1:1', { timeoutMs: 200 });
    const before = auth.counts.refresh;
    const client = createClient({
      baseURL: api.url,
      auth: {
        grant: refreshTokenGrant({
          tokenURL: auth.tokenURL,
          clientId: 'app',
          clientSecret: 'client-secret-value',
          refreshToken: 'rt_x',
        }),
        ...shared,
      },
      deadline: 2000,
    });
    const started = Date.now();
    const error = await client.get('items/1').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(auth.counts.refresh).toBe(before);
    await client.close();
    await shared.close();
  });
});

describe('a holder whose lock expired', () => {
  it('never writes the store', async () => {
    const writes: string[] = [];
    const store = {
      shared: true,
      get: async () => undefined,
      set: async (key: string) => {
        writes.push(key);
      },
      delete: async () => {},
    };
    const lock: Lock = {
      shared: true,
      acquire: async (key) => ({ key, owner: 'me', isHeld: async () => false, release: async () => {} }),
    };
    const events: SluiceEvent[] = [];
    const client = createClient({
      baseURL: api.url,
      onEvent: (event) => events.push(event),
      auth: {
        grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'client-secret-value' }),
        store,
        lock,
      },
    });
    await client.get('items/1');
    expect(writes).toEqual([]);
    expect(
      events.some(
        (event) => event.type === 'token' && event.action === 'failed' && /lock expired/.test(event.reason ?? ''),
      ),
    ).toBe(true);
    await client.close();
  });
});
