import Keyv from 'keyv';
import type { Pool } from 'pg';
import { ConfigError } from '../src/errors.js';
import type { AcquireOptions, Lock, TokenStore } from '../src/store.js';
import { type KeyvTokenStoreOptions, keyvTokenStore, type SharedTokenStore } from './keyv.js';
import { importPeer } from './peer.js';
import { type PostgresLockOptions, postgresLock } from './postgres-lock.js';

export interface PostgresTokenStoreOptions extends KeyvTokenStoreOptions, PostgresLockOptions {
  /** Prefix for every key and lock id, so several apps (or tests) can share one table. @default 'sluice' */
  namespace?: string;
  /** The table `@keyv/postgres` keeps tokens in; created when missing. @default 'sluice_tokens' */
  table?: string;
  /** Connections in the one pool that tokens and locks share; a held lock keeps one. @default 5 */
  poolSize?: number;
}

/** True when CREATE TABLE IF NOT EXISTS lost a race with another process: the table is there. */
const raced = (error: unknown) => ['23505', '42P07'].includes(String((error as { code?: unknown })?.code));

/**
 * One line for a fleet sharing PostgreSQL: `auth: { grant, ...postgresTokenStore(process.env.DATABASE_URL) }`.
 * Tokens go through `@keyv/postgres`, the lock is an advisory lock, and both run on one pg Pool that
 * this store owns (`close()` ends it). Store calls default to a 2 s deadline (`timeoutMs`).
 */
export function postgresTokenStore(url: string, options: PostgresTokenStoreOptions = {}): SharedTokenStore {
  const { namespace = 'sluice', table = 'sluice_tokens', timeoutMs = 2000, poolSize = 5 } = options;
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new ConfigError('postgresTokenStore: url must look like postgres://user@host:5432/db');
  if (!/^[A-Za-z_]\w*$/.test(table)) throw new ConfigError('postgresTokenStore: table must be a plain identifier');
  if (!(Number.isInteger(poolSize) && poolSize >= 2))
    throw new ConfigError('postgresTokenStore: poolSize must be an integer of at least 2');
  // @keyv/postgres and pg are optional peers: loaded here, when a PostgreSQL store is asked for.
  const opened = (async () => {
    const { default: KeyvPostgres } = await importPeer(
      '@keyv/postgres',
      () => import('@keyv/postgres'),
      'postgresTokenStore',
    );
    const { default: pg } = await importPeer('pg', () => import('pg'), 'postgresTokenStore');
    const pool: Pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      connectionTimeoutMillis: timeoutMs,
      application_name: 'sluice',
      allowExitOnIdle: true,
    });
    pool.on('error', () => {});
    // The adapter's table is created when it is constructed; if PostgreSQL was down then, it is
    // created on the next call instead, so sharing starts as soon as the database is back.
    let tableReady: Promise<unknown> | undefined;
    const ensureTable = () =>
      (tableReady ??= pool
        .query(`CREATE TABLE IF NOT EXISTS public.${table}(key VARCHAR(255) PRIMARY KEY, value TEXT)`)
        .catch((error: unknown) => {
          tableReady = undefined;
          if (!raced(error)) throw error;
        }));
    // @keyv/postgres keeps one module-wide pool per URL, which closing any store would end for all
    // of them: this adapter queries our pool instead, one per store, shared with the lock.
    class PooledKeyvPostgres extends KeyvPostgres {
      override async connect() {
        return async (sql: string, values?: unknown[]) => {
          await ensureTable();
          return (await pool.query(sql, values)).rows;
        };
      }
      override async disconnect() {}
    }
    const adapter = new PooledKeyvPostgres({ table });
    const inner = keyvTokenStore(new Keyv({ store: adapter, namespace }), { ...options, timeoutMs, shared: true });
    const lock = postgresLock(pool, { queryTimeoutMs: timeoutMs, ...options, prefix: `${namespace}:` });
    return { inner, pool, lock };
  })();
  opened.catch(() => {});
  // Loading the modules is not the store being slow; each query has its own deadline.
  const store: TokenStore = {
    shared: true,
    get: async (key) => (await opened).inner.get(key),
    set: async (key, value, ttl) => (await opened).inner.set(key, value, ttl),
    delete: async (key) => (await opened).inner.delete(key),
  };
  const lock: Lock = {
    shared: true,
    acquire: async (name: string, acquire: AcquireOptions) => (await opened).lock.acquire(name, acquire),
  };
  let closing: Promise<void> | undefined;
  return {
    store,
    lock,
    close: () =>
      (closing ??= (async () => {
        const connection = await opened.catch(() => undefined);
        if (!connection) return;
        await connection.lock.close?.();
        await connection.pool.end().catch(() => {});
      })()),
  };
}
