import Keyv from 'keyv';
import { ConfigError, StoreUnavailableError } from '../src/errors.js';
import { checkNames, own } from '../src/own.js';
import type { TokenStore } from '../src/store.js';
import { type KeyvTokenStoreOptions, keyvStore, type SharedTokenStore } from './keyv.js';
import { importPeer } from './peer.js';
import { type RedisLockOptions, redisLock } from './redis-lock.js';
import { bounded, settlesWithin } from './timeout.js';
import { keyWatchers } from './watchers.js';

export interface RedisTokenStoreOptions extends KeyvTokenStoreOptions, Omit<RedisLockOptions, 'prefix' | 'namespace'> {
  /** Prefix for every key this store and its lock write, so several apps can share one Redis. @default 'sluice' */
  namespace?: string | undefined;
  /** Wake waiters when a token is written (pub/sub); `false`: waiters poll. @default true */
  push?: boolean | undefined;
}

/**
 * Compare-and-set on Keyv's envelope (`{"value":{..."revision":N},"expires":ms}`), atomic on the server.
 * KEYS[1] key; ARGV: new envelope, expected revision ('' for none), TTL ms, the writer's clock (Keyv
 * decides expiry on the client's clock too).
 */
const SWAP = `
local current = redis.call('GET', KEYS[1])
local revision = false
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and type(doc) == 'table' and type(doc.value) == 'table' then
    local expired = type(doc.expires) == 'number' and doc.expires <= tonumber(ARGV[4])
    if not expired and type(doc.value.revision) == 'number' then revision = doc.value.revision end
  end
end
if ARGV[2] == '' then
  if revision then return 0 end
elseif revision ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`;

/** Reconnects forever with a capped backoff: sharing resumes by itself when Redis is back. */
const reconnectStrategy = (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000);

/**
 * One line for a fleet sharing Redis: `auth: { grant, ...redisTokenStore(process.env.REDIS_URL) }`.
 * Tokens go through `@keyv/redis`; the lock is `SET NX PX` on the same connection. While Redis is
 * unreachable, calls fail fast with `StoreUnavailableError` instead of queueing.
 */
const REDIS_OPTIONS = new Set([
  'namespace',
  'timeoutMs',
  'encryptionKey',
  'shared',
  'commandTimeoutMs',
  'poll',
  'push',
]);

export function redisTokenStore(url: string, given: RedisTokenStoreOptions = {}): SharedTokenStore {
  const options = own(given);
  checkNames('redisTokenStore', options, REDIS_OPTIONS);
  const { namespace = 'sluice', timeoutMs = 1000 } = options;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new Error('protocol');
  } catch {
    throw new ConfigError('redisTokenStore: url must look like redis://host:6379');
  }
  const socket = { connectTimeout: Math.max(timeoutMs, 1000), reconnectStrategy };
  // A script that forgets close() still exits: the connection does not keep the process alive while
  // idle, only while a command (or the wait for the connection) is out.
  let busy = 0;
  let idle: { ref(): void; unref(): void } | undefined;
  // One connection for tokens and lock, opened once, here (loading @keyv/redis, an optional peer), and
  // every call waits for it within its deadline: concurrent first calls must not each try to open it.
  const opened = (async () => {
    const { default: KeyvRedis, createClient } = await importPeer(
      '@keyv/redis',
      () => import('@keyv/redis'),
      'redisTokenStore',
    );
    const client = createClient({ url, socket, disableOfflineQueue: true });
    client.on('error', () => {});
    idle = client;
    if (busy === 0) client.unref();
    const opening = client.connect().catch(() => undefined);
    const adapter = new KeyvRedis(client, { namespace, throwOnErrors: true, throwOnConnectError: true });
    const keyv = new Keyv({ store: adapter, namespace, useKeyPrefix: false });
    const inner = keyvStore(
      keyv,
      { ...options, shared: true },
      {
        rawKey: (key) => `${namespace}::${key}`,
        async swap(rawKey, serialized, expected, ttlMs) {
          const args = [serialized, expected === undefined ? '' : String(expected), String(Math.ceil(ttlMs))];
          const reply = await client.sendCommand(['EVAL', SWAP, '1', rawKey, ...args, String(Date.now())]);
          return Number(reply) === 1;
        },
      },
    );
    return { client, opening, inner };
  })();
  opened.catch(() => {});
  // Loading the module is not the store being slow: only the network wait counts against the deadline.
  const connected = async () => {
    const connection = await opened;
    if (connection.client.isReady) return connection;
    return bounded('redis connect', timeoutMs, async () => {
      await connection.opening;
      if (!connection.client.isReady) throw new StoreUnavailableError('redis is not connected');
      return connection;
    });
  };
  const use = async <T>(work: (connection: Awaited<typeof opened>) => Promise<T>): Promise<T> => {
    if (busy++ === 0) idle?.ref();
    try {
      return await work(await connected());
    } finally {
      if (--busy === 0) idle?.unref();
    }
  };
  // Push: every write is announced on `<namespace>:written` (the key, no value), and a subscriber
  // connection, opened by the first watcher and unref'd, wakes that key's waiters. If it is down,
  // waiters poll as before.
  const channel = `${namespace}:written`;
  const announce = (key: string) => {
    void use((connection) => connection.client.sendCommand(['PUBLISH', channel, key])).catch(() => {});
  };
  const watchers = keyWatchers();
  let subscriber: Promise<{ destroy(): void } | undefined> | undefined;
  const subscribe = () =>
    (subscriber ??= (async () => {
      const { client } = await opened;
      const sub = client.duplicate();
      sub.on('error', () => {});
      sub.unref();
      await sub.connect();
      await sub.subscribe(channel, (key: string) => watchers.notify(key));
      return sub;
    })().catch(() => undefined));
  const store: TokenStore = {
    shared: true,
    namespace,
    get: (key) => use((connection) => connection.inner.get(key)),
    async set(key, value, ttl) {
      await use((connection) => connection.inner.set(key, value, ttl));
      announce(key);
    },
    delete: (key) => use((connection) => connection.inner.delete(key)),
    atomicSwap: true,
    async swap(key, value, expected, ttl) {
      const written = await use((connection) => connection.inner.swap(key, value, expected, ttl));
      if (written) announce(key);
      return written;
    },
    watch(key, onChange) {
      void subscribe();
      return watchers.add(key, onChange);
    },
  };
  // Without push, waiters poll (they do whenever a store has no watch).
  if (options.push === false) delete store.watch;
  const lock = redisLock(
    {
      sendCommand: (args) => use((connection) => connection.client.sendCommand(args)),
    },
    { commandTimeoutMs: options.commandTimeoutMs ?? timeoutMs, poll: options.poll, namespace },
  );
  return {
    store,
    lock,
    async close() {
      const sub = await subscriber;
      try {
        sub?.destroy();
      } catch {
        // Closed already (a second close()).
      }
      const connection = await opened.catch(() => undefined);
      if (!connection) return;
      // A client still trying to connect is dropped at once. A connected one finishes what it sent, if
      // Redis still answers: a PING answered within 2 s means every earlier reply is in (replies come
      // in order), so close() has nothing to wait for. Otherwise the socket is cut: node-redis can only
      // destroy a client that close() has not begun to close, so close() is never started on a dead link.
      const { client } = connection;
      let answered = false;
      if (client.isReady) {
        const ping = client.sendCommand(['PING']).then(() => {
          answered = true;
        });
        await settlesWithin(ping, 2000);
      }
      if (answered && (await settlesWithin(client.close(), 2000))) return;
      try {
        client.destroy();
      } catch {
        // Closed already (the close above began and took too long): at least let the process exit.
        client.unref();
      }
    },
  };
}
