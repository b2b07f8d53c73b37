import Keyv from 'keyv';
import type { Pool } from 'pg';
import { ConfigError } from '../src/errors.js';
import type { AcquireOptions, Lock, TokenStore } from '../src/store.js';
import { type KeyvTokenStoreOptions, keyvTokenStore } from './keyv.js';
import { importPeer } from './peer.js';
import { type PostgresLockOptions, postgresLock } from './postgres-lock.js';
import type { SharedTokenStore } from './redis.js';

export interface PostgresTokenStoreOptions extends KeyvTokenStoreOptions, PostgresLockOptions {
  /** Prefix for every key, so several apps can share one table. @default 'sluice' */
  namespace?: string;
  /** @default 'sluice_tokens' */
  table?: string;
}

/**
 * One line for a fleet sharing PostgreSQL: `auth: { grant, ...postgresTokenStore(process.env.DATABASE_URL) }`.
 * Tokens go through `@keyv/postgres` (its table is created on first use); the lock is an advisory lock.
 */
export function postgresTokenStore(url: string, options: PostgresTokenStoreOptions = {}): SharedTokenStore {
  const { namespace = 'sluice', table = 'sluice_tokens', timeoutMs = 2000 } = options;
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new ConfigError('postgresTokenStore: url must look like postgres://user@host:5432/db');
  if (!/^\w+$/.test(table)) throw new ConfigError('postgresTokenStore: table must be a plain identifier');
  // @keyv/postgres and pg are optional peers: loaded here, when a PostgreSQL store is asked for.
  const opened = (async () => {
    const { default: KeyvPostgres } = await importPeer(
      '@keyv/postgres',
      () => import('@keyv/postgres'),
      'postgresTokenStore',
    );
    const { default: pg } = await importPeer('pg', () => import('pg'), 'postgresTokenStore');
    const adapter = new KeyvPostgres({ uri: url, table, max: 4, connectionTimeoutMillis: timeoutMs });
    const inner = keyvTokenStore(new Keyv({ store: adapter, namespace }), { timeoutMs, ...options, shared: true });
    const pool: Pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: timeoutMs });
    pool.on('error', () => {});
    return { inner, pool, lock: postgresLock(pool, options) };
  })();
  opened.catch(() => {});
  // Loading the modules is not the store being slow; each query has its own deadline.
  const ready = () => opened;
  const store: TokenStore = {
    shared: true,
    async get(key) {
      return (await ready()).inner.get(key);
    },
    async set(key, value, ttl) {
      return (await ready()).inner.set(key, value, ttl);
    },
    async delete(key) {
      return (await ready()).inner.delete(key);
    },
  };
  const lock: Lock = {
    shared: true,
    async acquire(name: string, acquire: AcquireOptions) {
      return (await ready()).lock.acquire(name, acquire);
    },
  };
  return {
    store,
    lock,
    async close() {
      const connection = await opened.catch(() => undefined);
      if (!connection) return;
      await connection.inner.close?.();
      await connection.pool.end().catch(() => {});
    },
  };
}
