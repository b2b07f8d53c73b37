/**
 * Exactly one refresh whatever fails, part two: lost answers, a store that refuses the write, a lock
 * session the database terminates, a blackholed Redis, a token endpoint that asks for a pause. Two
 * clients with their own store connections stand for two processes; the token server keeps count.
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuthError,
  type AuthOptions,
  createClient,
  passwordGrant,
  refreshTokenGrant,
  type SluiceEvent,
  StoreUnavailableError,
  TimeoutError,
} from '../../src/index.js';
import { postgresTokenStore, redisTokenStore } from '../../stores/index.js';
import { startApiServer, startAuthServer } from '../../testing/index.js';
import { startPrivateRedis } from '../helpers/redis-server.js';
import { needs, POSTGRES_URL, REDIS_URL } from '../helpers/services.js';
import { expectNoReuse } from '../helpers/token-server.js';

const redis = await needs('redis');
const postgres = await needs('postgres');
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const namespace = (label: string) => `${label}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;

/** One "process": a client with its own store connection, recording its token events. */
function processOn(apiURL: string, layer: AuthOptions) {
  const events: SluiceEvent[] = [];
  const client = createClient({
    baseURL: apiURL,
    retry: { limit: 2, baseDelay: 10 },
    auth: layer,
    onEvent: (event) => events.push(event),
  });
  closers.push(() => client.close());
  const actions = () => events.flatMap((event) => (event.type === 'token' ? [event.action] : []));
  return { client, events, actions };
}

/** Two "processes" on one Redis namespace, each with its own connection. */
function twoProcesses(storeURL: string, label: string, apiURL: string, grant: () => AuthOptions['grant']) {
  const ns = namespace(label);
  return [0, 1].map(() => {
    const shared = redisTokenStore(storeURL, { namespace: ns });
    closers.push(shared.close);
    return processOn(apiURL, { grant: grant(), store: shared.store, lock: shared.lock });
  }) as [ReturnType<typeof processOn>, ReturnType<typeof processOn>];
}

const password = (tokenURL: string) =>
  passwordGrant({ tokenURL, clientId: 'app', clientSecret: 'app-secret', username: 'alice', password: 'wonderland' });

describe.runIf(redis)('a refresh whose answer is lost (the server rotated, then the connection reset)', () => {
  async function setup() {
    let drop = false;
    const auth = await startAuthServer({
      refreshTokens: true,
      dropAnswer: () => {
        const now = drop;
        drop = false;
        return now;
      },
    });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    return { auth, api, dropNext: () => (drop = true) };
  }

  it('a refresh-token-only grant: AUTH_REFRESH_TOKEN_LOST, and no process presents the spent token again', async () => {
    const { auth, api, dropNext } = await setup();
    const seeded = await fetch(auth.tokenURL, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=password&username=alice&password=wonderland&client_id=app&client_secret=app-secret',
    });
    const { refresh_token: seed } = (await seeded.json()) as { refresh_token: string };
    const [a, b] = twoProcesses(REDIS_URL, 'lost-rt', api.url, () =>
      refreshTokenGrant({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret', refreshToken: seed }),
    );
    await a.client.get('items/1');
    await b.client.get('items/1');
    expect(auth.presented).toHaveLength(1);
    dropNext();
    auth.revokeAll();
    const lost = await a.client.get('items/2').catch((error: unknown) => error);
    expect(lost).toBeInstanceOf(AuthError);
    expect((lost as AuthError).code).toBe('AUTH_REFRESH_TOKEN_LOST');
    expect(a.actions()).toContain('refresh-token-lost');
    // The other process and the same one again: told at once, without presenting the token.
    for (const proc of [b, a]) {
      const again = await proc.client.get('items/3').catch((error: unknown) => error);
      expect((again as AuthError).code).toBe('AUTH_REFRESH_TOKEN_LOST');
    }
    expect(auth.presented).toHaveLength(2);
    expectNoReuse(auth);
  });

  it('a grant that can log in again: the call succeeds after one re-authentication, the other process adopts it', async () => {
    const { auth, api, dropNext } = await setup();
    const [a, b] = twoProcesses(REDIS_URL, 'lost-pw', api.url, () => password(auth.tokenURL));
    await a.client.get('items/1');
    await b.client.get('items/1');
    const before = auth.counts.token;
    dropNext();
    auth.revokeAll();
    await a.client.get('items/2');
    await b.client.get('items/2');
    expect(a.actions()).toContain('refresh-token-lost');
    // One refresh (its answer lost) and one password login; the other process asked for nothing.
    expect(auth.counts.token - before).toBe(2);
    expect(auth.counts.refresh).toBe(1);
    expect(b.actions()).not.toContain('requesting');
    expectNoReuse(auth);
  });
});

describe.runIf(redis)('a store that fails the write after a successful refresh', () => {
  it('keeps the new tokens in memory, serves them, retries the write, and no refresh token is presented twice', async () => {
    const privateRedis = await startPrivateRedis();
    closers.push(privateRedis.stop);
    const auth = await startAuthServer({
      refreshTokens: true,
      async onTokenRequest(form) {
        // Writes start failing while the refresh is on the wire: the spent mark is in, the result is not.
        if (form.get('grant_type') === 'refresh_token') {
          await privateRedis.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
          await privateRedis.command('CONFIG', 'SET', 'maxmemory', '1');
        }
      },
    });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const [a, b] = twoProcesses(privateRedis.url, 'write-fails', api.url, () => password(auth.tokenURL));
    await a.client.get('items/1');
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    closers.push(async () => process.off('unhandledRejection', onUnhandled));
    auth.revokeAll();
    await expect(a.client.get('items/2')).resolves.toBeDefined();
    await expect(a.client.get('items/3')).resolves.toBeDefined();
    expect(a.actions()).toContain('store-write-failed');
    expect(auth.counts.refresh).toBe(1);
    // Redis takes writes again: the retried write lands, and another process starts from it.
    await privateRedis.command('CONFIG', 'SET', 'maxmemory', '0');
    for (let waited = 0; waited < 8000 && !a.events.some(isLateStore); waited += 100) await sleep(100);
    expect(a.events.some(isLateStore)).toBe(true);
    const tokensBefore = auth.counts.token;
    await b.client.get('items/4');
    expect(auth.counts.token).toBe(tokensBefore);
    expect(unhandled).toEqual([]);
    expectNoReuse(auth);
  }, 30_000);
});

describe.runIf(redis)('Redis flushed while a refresh is on the wire', () => {
  it('the holder still stores the new tokens (the mark it expected is gone, the store is empty), and others adopt them', async () => {
    const privateRedis = await startPrivateRedis();
    closers.push(privateRedis.stop);
    const auth = await startAuthServer({
      refreshTokens: true,
      async onTokenRequest(form) {
        if (form.get('grant_type') === 'refresh_token') await privateRedis.command('FLUSHALL');
      },
    });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const [a, b] = twoProcesses(privateRedis.url, 'flush', api.url, () => password(auth.tokenURL));
    await a.client.get('items/1');
    await b.client.get('items/1');
    auth.revokeAll();
    await a.client.get('items/2');
    expect(a.actions().filter((action) => action === 'stored')).toHaveLength(2);
    const before = auth.counts.token;
    await b.client.get('items/2');
    expect(auth.counts.token).toBe(before);
    expect(auth.counts.refresh).toBe(1);
    expectNoReuse(auth);
  });
});

const isLateStore = (event: SluiceEvent) =>
  event.type === 'token' && event.action === 'stored' && /after a failed write/.test(event.reason ?? '');

describe.runIf(postgres)('the lock holder’s PostgreSQL session is terminated mid-refresh', () => {
  it('no crash, no refresh token presented twice, and the old holder never overwrites the newer entry', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holdNext = false;
    let onHeld!: () => void;
    const held = new Promise<void>((resolve) => {
      onHeld = resolve;
    });
    const auth = await startAuthServer({
      refreshTokens: true,
      async onTokenRequest(form) {
        if (holdNext && form.get('grant_type') === 'refresh_token') {
          holdNext = false;
          onHeld();
          await Promise.race([released, sleep(10_000)]);
        }
      },
    });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const ns = namespace('pgterm');
    const sharedA = postgresTokenStore(POSTGRES_URL, { namespace: ns });
    const sharedB = postgresTokenStore(POSTGRES_URL, { namespace: ns });
    closers.push(sharedA.close, sharedB.close);
    const layer = { lockTtl: 1500, lockWait: 10_000 };
    const a = processOn(api.url, {
      grant: password(auth.tokenURL),
      store: sharedA.store,
      lock: sharedA.lock,
      ...layer,
    });
    const b = processOn(api.url, {
      grant: password(auth.tokenURL),
      store: sharedB.store,
      lock: sharedB.lock,
      ...layer,
    });
    await a.client.get('items/1');
    await b.client.get('items/1');
    holdNext = true;
    auth.revokeAll();
    const callA = a.client.get('items/2', { timeout: 15_000 });
    await held;
    // Find A's lock session by its lock id (ours alone, whatever else runs on this database) and end it.
    const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    closers.push(() => admin.end());
    const key = a.client.auth!.managers[0]!.key;
    const id = BigInt.asUintN(64, createHash('sha256').update(`${ns}:${key}:lock`).digest().readBigInt64BE(0));
    const { rows } = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::oid AND objid = $2::oid`,
      [String(id >> 32n), String(id & 0xffffffffn)],
    );
    expect(rows).toHaveLength(1);
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    // B takes over: the refresh token A presented is spent, so B logs in again rather than present it.
    await b.client.get('items/2', { timeout: 15_000 });
    release();
    await callA;
    await a.client.get('items/3');
    await b.client.get('items/3');
    expectNoReuse(auth);
    const tokenA = await a.client.auth!.token();
    const tokenB = await b.client.auth!.token();
    // Whoever wrote last, the store never went back: both end on the same, newest generation.
    expect(tokenA.generation).toBe(tokenB.generation);
    expect(tokenA.accessToken).toBe(tokenB.accessToken);
  }, 40_000);
});

/** A TCP proxy in front of Redis that can stop forwarding without closing anything: a blackhole. */
async function blackholeProxy(port: number) {
  let holed = false;
  const sockets = new Set<Socket>();
  // allowHalfOpen: a FIN from the client is not answered either, as with a peer that is gone.
  const server = createServer({ allowHalfOpen: true }, (inbound) => {
    const outbound = tcpConnect({ port, host: '127.0.0.1', allowHalfOpen: true });
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    }
    inbound.on('data', (data) => !holed && outbound.write(data));
    outbound.on('data', (data) => !holed && inbound.write(data));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${address.port}`,
    hole: () => {
      holed = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Runs close-child.ts against `url`: resolves how long close() took and how long the process lived on. */
async function closeInChild(engine: 'redis' | 'postgres', url: string, hole: () => void) {
  const child = fork(new URL('../helpers/close-child.ts', import.meta.url), [JSON.stringify({ engine, url })], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  closers.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number>((resolve) => child.once('exit', () => resolve(Date.now())));
  const message = () => new Promise<unknown>((resolve) => child.once('message', resolve));
  expect(await message()).toBe('ready');
  hole();
  const reported = message();
  child.send('close');
  const { closedMs } = (await reported) as { closedMs: number };
  const reportedAt = Date.now();
  const exitedAt = await Promise.race([exited, sleep(5000).then(() => Number.POSITIVE_INFINITY)]);
  return { closedMs, livedOnMs: exitedAt - reportedAt };
}

describe('a blackholed store: close() returns within 2 s and leaves no handle open', () => {
  it.runIf(redis)('Redis (a private redis-server behind a TCP proxy that stops forwarding)', async () => {
    const privateRedis = await startPrivateRedis();
    closers.push(privateRedis.stop);
    const proxy = await blackholeProxy(privateRedis.port);
    closers.push(proxy.close);
    const shared = redisTokenStore(proxy.url, { namespace: namespace('blackhole'), timeoutMs: 300 });
    closers.push(shared.close);
    await shared.store.set('k', { revision: 1 }, 10_000);
    proxy.hole();
    const started = Date.now();
    await expect(shared.store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(1000);
    const second = await blackholeProxy(privateRedis.port);
    closers.push(second.close);
    const { closedMs, livedOnMs } = await closeInChild('redis', second.url, second.hole);
    console.log(`close() with Redis blackholed: ${closedMs} ms; the process exited ${livedOnMs} ms later`);
    expect(closedMs).toBeLessThan(2600);
    expect(livedOnMs).toBeLessThan(2000);
  });

  it.runIf(postgres)('PostgreSQL (behind a TCP proxy that stops forwarding)', async () => {
    const proxy = await blackholeProxy(Number(new URL(POSTGRES_URL).port));
    closers.push(proxy.close);
    const url = POSTGRES_URL.replace(/:\d+\//, `:${new URL(proxy.url).port}/`);
    const { closedMs, livedOnMs } = await closeInChild('postgres', url, proxy.hole);
    console.log(`close() with PostgreSQL blackholed: ${closedMs} ms; the process exited ${livedOnMs} ms later`);
    expect(closedMs).toBeLessThan(2600);
    expect(livedOnMs).toBeLessThan(2000);
  });
});

describe.runIf(redis)('a token endpoint that asks for a pause', () => {
  it('503 Retry-After: 1 is waited out before the token request is sent again', async () => {
    const seen: number[] = [];
    const auth = await startAuthServer({
      onTokenRequest: () => {
        seen.push(Date.now());
        if (seen.length === 1) return { status: 503, headers: { 'retry-after': '1' } };
      },
    });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const proc = processOn(api.url, { grant: password(auth.tokenURL) });
    await proc.client.get('items/1');
    expect(seen).toHaveLength(2);
    expect(seen[1]! - seen[0]!).toBeGreaterThanOrEqual(950);
  });

  it('429 Retry-After: 2 pauses the credential for the whole fleet; short calls time out, a patient one waits', async () => {
    const seen: number[] = [];
    const auth = await startAuthServer({
      onTokenRequest: () => {
        seen.push(Date.now());
        if (seen.length === 1) return { status: 429, headers: { 'retry-after': '2' } };
      },
    });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const [a, b] = twoProcesses(REDIS_URL, 'pause', api.url, () => password(auth.tokenURL));
    const first = await a.client.get('items/1', { timeout: 500 }).catch((error: unknown) => error);
    expect(first).toBeInstanceOf(TimeoutError);
    expect(a.actions()).toContain('rate-limited');
    // Another process inside the window: no token request at all, a TimeoutError for its budget.
    const started = Date.now();
    for (let i = 0; i < 5; i++) {
      const error = await b.client.get(`items/${i}`, { timeout: 300 }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(TimeoutError);
    }
    expect(Date.now() - started).toBeLessThan(1500);
    expect(seen).toHaveLength(1);
    // A caller whose budget outlasts the pause waits it out and gets through.
    await b.client.get('items/9', { timeout: 5000 });
    expect(seen).toHaveLength(2);
    expect(seen[1]! - seen[0]!).toBeGreaterThanOrEqual(1900);
  });
});
