import KeyvRedis, { createClient } from '@keyv/redis';
import Keyv from 'keyv';
import { ConfigError } from '../src/errors.js';
import type { Lock, TokenStore } from '../src/store.js';
import { type KeyvTokenStoreOptions, keyvTokenStore } from './keyv.js';
import { type RedisLockOptions, redisLock } from './redis-lock.js';
import { bounded } from './timeout.js';

export interface RedisTokenStoreOptions extends KeyvTokenStoreOptions, RedisLockOptions {
  /** Prefix for every key this store and its lock write, so several apps can share one Redis. @default 'sluice' */
  namespace?: string;
}

export interface SharedTokenStore {
  store: TokenStore;
  lock: Lock;
  /** Closes both connections. */
  close(): Promise<void>;
}

/** Reconnects forever with a capped backoff: sharing resumes by itself when Redis is back. */
const reconnectStrategy = (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000);

/**
 * One line for a fleet sharing Redis: `auth: { grant, ...redisTokenStore(process.env.REDIS_URL) }`.
 * Tokens go through `@keyv/redis`; the lock is `SET NX PX` on a second connection. While Redis is
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
  const adapter = new KeyvRedis(
    { url, socket, disableOfflineQueue: true },
    { namespace, throwOnErrors: true, throwOnConnectError: true, connectionTimeout: timeoutMs },
  );
  const keyv = new Keyv({ store: adapter, namespace, useKeyPrefix: false });
  const store = keyvTokenStore(keyv, { ...options, shared: true });

  const lockClient = createClient({ url, socket, disableOfflineQueue: true });
  lockClient.on('error', () => {});
  let connecting: Promise<unknown> | undefined;
  const connected = () => {
    if (!lockClient.isOpen) connecting ??= lockClient.connect().finally(() => (connecting = undefined));
    return connecting ?? Promise.resolve();
  };
  const lock = redisLock(
    {
      sendCommand: async (args) => {
        await bounded('redis lock connect', timeoutMs, connected);
        return lockClient.sendCommand(args);
      },
    },
    { ...options, prefix: `${namespace}:lock:` },
  );
  return {
    store,
    lock,
    async close() {
      await store.close?.();
      if (lockClient.isOpen) await lockClient.close().catch(() => {});
    },
  };
}
