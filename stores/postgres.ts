import KeyvPostgres from '@keyv/postgres';
import Keyv from 'keyv';
import pg from 'pg';
import { ConfigError } from '../src/errors.js';
import { type KeyvTokenStoreOptions, keyvTokenStore } from './keyv.js';
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
  const adapter = new KeyvPostgres({ uri: url, table, max: 4, connectionTimeoutMillis: timeoutMs });
  const keyv = new Keyv({ store: adapter, namespace });
  const store = keyvTokenStore(keyv, { timeoutMs, ...options, shared: true });
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: timeoutMs });
  pool.on('error', () => {});
  const lock = postgresLock(pool, options);
  return {
    store,
    lock,
    async close() {
      await store.close?.();
      await pool.end().catch(() => {});
    },
  };
}
