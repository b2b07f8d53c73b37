/** localTokenStore (issue 13, item 1): what a file-backed store owes its machine beyond the conformance suites. */
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, clientCredentials, createClient, type SluiceEvent } from '../../src/index.js';
import { localTokenStore, postgresTokenStore, redisTokenStore, type SharedTokenStore } from '../../stores/index.js';
import { startApiServer, startAuthServer } from '../../testing/index.js';
import { needs, POSTGRES_URL, REDIS_URL } from '../helpers/services.js';

await needs('redis');
await needs('postgres');

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const fresh = () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-local-'));
  dirs.push(dir);
  return dir;
};

describe('localTokenStore', () => {
  it('refuses a directory every user may write to; creates its own 0700, files 0600', async () => {
    const open = join(fresh(), 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(() => localTokenStore(open)).toThrow(ConfigError);
    expect(() => localTokenStore(open)).toThrow(/writable by other users/);
    // The files' own directory: not group- or world-writable even with the sticky bit, not a symlink.
    const shared = fresh();
    mkdirSync(join(shared, 'sluice'));
    chmodSync(join(shared, 'sluice'), 0o1777);
    expect(() => localTokenStore(shared)).toThrow(/writable by other users/);
    const linked = fresh();
    symlinkSync(fresh(), join(linked, 'sluice'));
    expect(() => localTokenStore(linked)).toThrow(/not a directory/);
    for (const namespace of ['..', '.', '.hidden', 'a/b'])
      expect(() => localTokenStore(fresh(), { namespace })).toThrow(ConfigError);
    const dir = fresh();
    const { store } = localTokenStore(dir, { namespace: 'app' });
    await store.set('k', { revision: 1 }, 60_000);
    expect(statSync(join(dir, 'app')).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(join(dir, 'app'))) expect(statSync(join(dir, 'app', name)).mode & 0o777).toBe(0o600);
    expect(() => localTokenStore(dir, { namespace: '../escape' })).toThrow(ConfigError);
    // A key too long for a file name is hashed into one.
    const long = `sluice:token:${'x'.repeat(400)}`;
    await store.set(long, { revision: 2 }, 60_000);
    expect(await store.get(long)).toEqual({ revision: 2 });
  });

  it('sealed entries hold no token; a corrupt newest entry is ignored and replaced by a client', async () => {
    const auth = await startAuthServer();
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const dir = fresh();
    const grant = clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
    const events: SluiceEvent[] = [];
    const make = () =>
      createClient({
        baseURL: api.url,
        onEvent: (event) => events.push(event),
        auth: { grant, ...localTokenStore(dir, { encryptionKey: 'a passphrase' }) },
      });
    const first = make();
    closers.push(() => first.close());
    await first.get('whoami');
    const token = (await first.auth.token()).accessToken;
    const files = readdirSync(join(dir, 'sluice')).filter((name) => !name.startsWith('.'));
    for (const name of files) expect(readFileSync(join(dir, 'sluice', name), 'utf8')).not.toContain(token);
    // Garbage as the newest version of the token entry.
    const keyOf = (name: string) => Buffer.from(name.split('~')[0] as string, 'base64url').toString();
    const versions = files.filter((name) => /^sluice:token:[\w-]+$/.test(keyOf(name)));
    const base = (versions[0] as string).split('~')[0];
    const newest = Math.max(...versions.map((name) => Number(name.split('~')[1])));
    writeFileSync(join(dir, 'sluice', `${base}~${newest + 1}`), '{not json', { mode: 0o600 });
    const second = make();
    closers.push(() => second.close());
    await second.get('whoami');
    expect(auth.counts.token).toBe(2);
    expect(events.some((event) => event.type === 'token' && event.action === 'store-entry-ignored')).toBe(true);
    const third = make();
    closers.push(() => third.close());
    await third.get('whoami');
    expect(auth.counts.token).toBe(2);
  });
});

/**
 * A holder refreshes (the token endpoint takes 420 ms); a waiter starts 30 ms later with its lock polling
 * slowed to 400 ms, so only a push makes it quick. Resolves the time from the holder's write to the
 * waiter's read of it.
 */
async function lagBehindSlowRefresh(shared: () => SharedTokenStore) {
  const auth = await startAuthServer({ delay: 420 });
  const api = await startApiServer({ auth });
  closers.push(auth.close, api.close);
  const grant = clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
  let stored = 0;
  let received = 0;
  const make = (onEvent: (event: SluiceEvent) => void) =>
    createClient({ baseURL: api.url, onEvent, auth: { grant, ...shared() } });
  const holder = make((event) => {
    if (event.type === 'token' && event.action === 'stored') stored = performance.now();
  });
  const waiter = make((event) => {
    if (event.type === 'token' && event.action === 'loaded') received = performance.now();
  });
  closers.push(
    () => holder.close(),
    () => waiter.close(),
  );
  const first = holder.auth.token();
  await new Promise((resolve) => setTimeout(resolve, 30));
  await waiter.auth.token();
  await first;
  expect(auth.counts.token).toBe(1);
  return received - stored;
}

describe('push: a waiter learns of the new token when it is written, not at its next poll', () => {
  it('local files (a directory watch), three times', async () => {
    const dir = fresh();
    const lags: number[] = [];
    for (let round = 0; round < 3; round++) {
      lags.push(
        await lagBehindSlowRefresh(() => localTokenStore(dir, { namespace: `push${round}`, poll: [400, 400] })),
      );
    }
    expect(Math.max(...lags)).toBeLessThan(60);
  });

  it('close() returns promptly while the pub/sub connection of a watcher is still trying to reach Redis', async () => {
    const shared = redisTokenStore('redis://127.0.0.1:1', { namespace: `gone-${process.pid}`, timeoutMs: 200 });
    const stop = shared.store.watch!('k', () => {});
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = performance.now();
    await shared.close();
    stop();
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('push: false on any store leaves its waiters polling (no watch), and is checked by name', async () => {
    const stores = [
      localTokenStore(fresh(), { push: false }),
      redisTokenStore(REDIS_URL, { push: false }),
      postgresTokenStore(POSTGRES_URL, { push: false }),
    ];
    closers.push(...stores.map((shared) => shared.close));
    expect(stores.map((shared) => typeof shared.store.watch)).toEqual(['undefined', 'undefined', 'undefined']);
    expect(typeof localTokenStore(fresh()).store.watch).toBe('function');
    expect(() => localTokenStore(fresh(), { pushh: false } as never)).toThrow(/push/);
  });

  it.each([
    ['Redis (pub/sub)', (namespace: string) => redisTokenStore(REDIS_URL, { namespace, poll: [400, 400] })],
    [
      'PostgreSQL (LISTEN/NOTIFY)',
      (namespace: string) => postgresTokenStore(POSTGRES_URL, { namespace, poll: [400, 400] }),
    ],
  ])('%s', async (_, open) => {
    const namespace = `push-${process.pid}-${Date.now()}`;
    expect(await lagBehindSlowRefresh(() => open(namespace))).toBeLessThan(60);
  });
});
