/**
 * Any Keyv shares (issue 11, item 4): a Keyv the user built by hand (any namespace, `useKeyPrefix` on or
 * off) and `redisTokenStore` / `postgresTokenStore` on the same backend and namespace find one token,
 * across processes; a Keyv that cannot share, or a lock in another namespace, is refused at construction.
 */
import KeyvPostgres from '@keyv/postgres';
import KeyvRedis, { createClient as createRedis } from '@keyv/redis';
import Keyv from 'keyv';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, clientCredentials, createClient, passwordGrant } from '../../src/index.js';
import { keyvRedisLock, keyvTokenStore, redisLock, redisTokenStore } from '../../stores/index.js';
import { keyvStore } from '../../stores/keyv.js';
import { startApiServer, startAuthServer } from '../../testing/index.js';
import { startFleet } from '../helpers/fleet.js';
import type { FleetJob } from '../helpers/fleet-worker.js';
import { needs, POSTGRES_URL, REDIS_URL } from '../helpers/services.js';

await needs('redis');
await needs('postgres');
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
const unique = (label: string) => `${label}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function fleetOf(engines: FleetJob['engine'][], storeURL: string) {
  const auth = await startAuthServer();
  const api = await startApiServer({ auth });
  closers.push(auth.close, api.close);
  const namespace = unique('keyv-share');
  const fleet = startFleet(
    engines.map((engine, id) => ({
      id,
      apiURL: api.url,
      tokenURL: auth.tokenURL,
      engine,
      storeURL,
      namespace,
      loops: 10,
      maxSeconds: 30,
      grant: 'client_credentials',
    })),
  );
  closers.push(async () => {
    for (const worker of fleet.workers) if (worker.exitCode === null) worker.kill('SIGKILL');
  });
  await fleet.ready;
  const first = auth.counts.token;
  auth.revokeAll();
  await sleep(800);
  const reports = await fleet.stop();
  return { auth, reports, first };
}

describe('a hand-built Keyv and the Sluice stores share one token across processes', () => {
  it('Redis: 2 processes on redisTokenStore + 2 on new Keyv(new KeyvRedis(url), { namespace }) -> 1 token request, 1 more after a revocation', async () => {
    const { auth, reports, first } = await fleetOf(['redis', 'keyv-redis', 'redis', 'keyv-redis'], REDIS_URL);
    expect(reports.flatMap((report) => report?.errors ?? [])).toEqual([]);
    expect(reports.reduce((sum, report) => sum + (report?.ok ?? 0), 0)).toBeGreaterThan(0);
    expect(first).toBe(1);
    expect(auth.counts.token).toBe(2);
  }, 40_000);

  it('PostgreSQL: postgresTokenStore + new Keyv(new KeyvPostgres({ uri, table }), { namespace }) -> 1 token request, 1 more after a revocation', async () => {
    const { auth, reports, first } = await fleetOf(['postgres', 'keyv-postgres', 'keyv-postgres'], POSTGRES_URL);
    expect(reports.flatMap((report) => report?.errors ?? [])).toEqual([]);
    expect(first).toBe(1);
    expect(auth.counts.token).toBe(2);
  }, 40_000);
});

async function keysIn(namespace: string): Promise<string[]> {
  const client = createRedis({ url: REDIS_URL });
  await client.connect();
  try {
    return (await client.keys(`*${namespace}*`)).filter((key) => !key.includes(':lock:')).sort();
  } finally {
    await client.close();
  }
}

describe('the key scheme', () => {
  it.each([
    ['useKeyPrefix on (Keyv default)', true],
    ['useKeyPrefix off', false],
  ])('Redis, %s: one entry under <namespace>::sluice:token:<hash>, read by redisTokenStore', async (_, prefix) => {
    const auth = await startAuthServer();
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const namespace = unique('scheme');
    const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace, useKeyPrefix: prefix });
    closers.push(() => keyv.disconnect());
    const grant = clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
    const adapter = keyv.store as KeyvRedis<unknown>;
    const mine = createClient({
      baseURL: api.url,
      auth: {
        grant,
        store: keyvTokenStore(keyv),
        lock: redisLock(adapter.client as unknown as Parameters<typeof redisLock>[0], { namespace }),
      },
    });
    const theirs = createClient({ baseURL: api.url, auth: { grant, ...redisTokenStore(REDIS_URL, { namespace }) } });
    closers.push(
      () => mine.close(),
      () => theirs.close(),
    );
    await mine.get('/whoami');
    await theirs.get('/whoami');
    expect(auth.counts.token).toBe(1);
    const keys = await keysIn(namespace);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(new RegExp(`^${namespace}::sluice:token:[\\w-]+$`));
    // The caller's Keyv is left as it was built.
    expect(keyv.useKeyPrefix).toBe(prefix);
    expect(keyv.namespace).toBe(namespace);
    await keyv.set('own-key', 1);
    expect(await keyv.get('own-key')).toBe(1);
  });

  it('PostgreSQL: the same row as postgresTokenStore (<namespace>:sluice:token:<hash>)', async () => {
    const auth = await startAuthServer();
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const namespace = unique('scheme-pg');
    const keyv = new Keyv({
      store: new KeyvPostgres({ uri: POSTGRES_URL, table: 'sluice_tokens' }),
      namespace,
      useKeyPrefix: false,
    });
    closers.push(() => keyv.disconnect());
    const grant = clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
    const { postgresTokenStore, postgresLock } = await import('../../stores/index.js');
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
    closers.push(() => pool.end());
    const mine = createClient({
      baseURL: api.url,
      auth: { grant, store: keyvTokenStore(keyv), lock: postgresLock(pool, { namespace }) },
    });
    const theirs = createClient({
      baseURL: api.url,
      auth: { grant, ...postgresTokenStore(POSTGRES_URL, { namespace }) },
    });
    closers.push(
      () => mine.close(),
      () => theirs.close(),
    );
    await mine.get('/whoami');
    await theirs.get('/whoami');
    expect(auth.counts.token).toBe(1);
    const { rows } = await pool.query('SELECT key FROM sluice_tokens WHERE key LIKE $1', [`%${namespace}%`]);
    expect(rows.map((row: { key: string }) => row.key)).toEqual([
      expect.stringMatching(new RegExp(`^${namespace}:sluice:token:[\\w-]+$`)),
    ]);
  });
});

describe('an upgrade keeps its tokens', () => {
  it("an entry the caller's Keyv wrote before the scheme (<ns>::<ns>:sluice:token:…) is read, then moved on the next write", async () => {
    const auth = await startAuthServer({ refreshTokens: true });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const namespace = unique('upgrade');
    const grant = passwordGrant({
      tokenURL: auth.tokenURL,
      clientId: 'app',
      clientSecret: 'app-secret',
      username: 'alice',
      password: 'wonderland',
    });
    const keyvs = [1, 2].map(() => new Keyv({ store: new KeyvRedis(REDIS_URL), namespace }));
    closers.push(async () => {
      for (const keyv of keyvs) await keyv.disconnect();
    });
    const [oldKeyv, newKeyv] = keyvs as [Keyv, Keyv];
    // What keyvTokenStore did before: the caller's Keyv itself, with its own prefixing.
    const before = createClient({
      baseURL: api.url,
      auth: { grant, store: keyvStore(oldKeyv, {}), lock: keyvRedisLock(oldKeyv) },
    });
    await before.get('/whoami');
    await before.close();
    expect(await keysIn(namespace)).toEqual([
      expect.stringMatching(new RegExp(`^${namespace}::${namespace}:sluice:token:`)),
    ]);
    const tokensBefore = auth.counts.token;
    const after = createClient({
      baseURL: api.url,
      auth: { grant, store: keyvTokenStore(newKeyv), lock: keyvRedisLock(newKeyv) },
    });
    closers.push(() => after.close());
    await after.get('/whoami');
    expect(auth.counts.token).toBe(tokensBefore); // found, not fetched again
    after.auth?.invalidate();
    await after.get('/whoami'); // refreshed with the stored refresh token, written under the scheme's key
    expect(auth.counts.refresh).toBe(1);
    expect(auth.counts.reuse).toBe(0);
    expect(await keysIn(namespace)).toEqual([expect.stringMatching(new RegExp(`^${namespace}::sluice:token:`))]);
  });
});

describe('refused at construction', () => {
  it('a shared Keyv without a namespace: its keys would mix with everything else in the database', () => {
    const adapter = new KeyvRedis(REDIS_URL);
    const keyv = new Keyv({ store: adapter });
    keyv.namespace = undefined;
    closers.push(() => keyv.disconnect());
    expect(() => keyvTokenStore(keyv)).toThrow(ConfigError);
    expect(() => keyvTokenStore(keyv)).toThrow(/give the Keyv a namespace/);
  });

  it('a lock in another namespace than the store: processes would not exclude each other', () => {
    const adapter = new KeyvRedis(REDIS_URL);
    const keyv = new Keyv({ store: adapter, namespace: 'billing' });
    closers.push(() => keyv.disconnect());
    const grant = clientCredentials({ tokenURL: 'https://idp.example/token', clientId: 'a', clientSecret: 'b' });
    const lock = redisLock(adapter.client as unknown as Parameters<typeof redisLock>[0]);
    expect(() =>
      createClient({ baseURL: 'https://api.example', auth: { grant, store: keyvTokenStore(keyv), lock } }),
    ).toThrow(/lock's namespace "sluice" is not the store's "billing"/);
  });

  it('one listener on the adapter however many stores are made over one Keyv', () => {
    const adapter = new KeyvRedis(REDIS_URL);
    const keyv = new Keyv({ store: adapter, namespace: 'listeners' });
    closers.push(() => keyv.disconnect());
    const before = adapter.listenerCount('error');
    for (let i = 0; i < 50; i++) keyvTokenStore(keyv);
    expect(adapter.listenerCount('error') - before).toBeLessThanOrEqual(2);
  });

  it('not a Keyv at all; keyvRedisLock on a Keyv that is not on Redis', () => {
    expect(() => keyvTokenStore({} as Keyv)).toThrow(ConfigError);
    expect(() => keyvRedisLock(new Keyv({ namespace: 'x' }))).toThrow(/needs a Keyv on @keyv\/redis/);
  });
});
