import Keyv from 'keyv';
import { ConfigError, StoreUnavailableError } from '../src/errors.js';
import type { TokenStore } from '../src/store.js';
import { type KeyvTokenStoreOptions, keyvTokenStore, type SharedTokenStore } from './keyv.js';
import { importPeer } from './peer.js';
import { type RedisLockOptions, redisLock } from './redis-lock.js';
import { bounded } from './timeout.js';

export interface RedisTokenStoreOptions extends KeyvTokenStoreOptions, RedisLockOptions {
  /** Prefix for every key this store and its lock write, so several apps can share one Redis. @default 'sluice' */
  namespace?: string;
}

/** Reconnects forever with a capped backoff: sharing resumes by itself when Redis is back. */
const reconnectStrategy = (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000);

/**
 * One line for a fleet sharing Redis: `auth: { grant, ...redisTokenStore(process.env.REDIS_URL) }`.
 * Tokens go through `@keyv/redis`; the lock is `SET NX PX` on the same connection. While Redis is
 * unreachable, calls fail fast with `StoreUnavailableError` instead of queueing.
 */
export function redisTokenStore(url: string, options: RedisTokenStoreOptions = {}): SharedTokenStore {
  const { namespace = 'sluice', timeoutMs = 1000 } = options;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new Error('protocol');
  } catch {
    throw new ConfigError('redisTokenStore: url must look like redis://host:6379');
  }
  const socket = { connectTimeout: Math.max(timeoutMs, 1000), reconnectStrategy };
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
    const opening = client.connect().catch(() => undefined);
    const adapter = new KeyvRedis(client, { namespace, throwOnErrors: true, throwOnConnectError: true });
    const keyv = new Keyv({ store: adapter, namespace, useKeyPrefix: false });
    return { client, opening, inner: keyvTokenStore(keyv, { ...options, shared: true }) };
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
  const store: TokenStore = {
    shared: true,
    async get(key) {
      return (await connected()).inner.get(key);
    },
    async set(key, value, ttl) {
      return (await connected()).inner.set(key, value, ttl);
    },
    async delete(key) {
      return (await connected()).inner.delete(key);
    },
  };
  const lock = redisLock(
    {
      sendCommand: async (args) => (await connected()).client.sendCommand(args),
    },
    { commandTimeoutMs: timeoutMs, ...options, prefix: `${namespace}:lock:` },
  );
  return {
    store,
    lock,
    async close() {
      const connection = await opened.catch(() => undefined);
      if (!connection) return;
      // A client still trying to connect is dropped at once; a connected one finishes what it sent.
      const { client } = connection;
      if (client.isReady) await client.close().catch(() => {});
      else if (client.isOpen) client.destroy();
    },
  };
}
