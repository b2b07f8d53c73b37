import { createHash } from 'node:crypto';
import Keyv from 'keyv';
import type { Pool } from 'pg';
import { ConfigError } from '../src/errors.js';
import { checkNames, own } from '../src/own.js';
import { type AcquireOptions, type Lock, revisionOf } from '../src/store.js';
import { type KeyvTokenStoreOptions, keyvStore, type SharedTokenStore } from './keyv.js';
import { importPeer } from './peer.js';
import { postgresLeaseLock } from './postgres-lease.js';
import { type PostgresLockOptions, postgresLock } from './postgres-lock.js';
import { settlesWithin } from './timeout.js';
import { keyWatchers, withPush } from './watchers.js';

export interface PostgresTokenStoreOptions
  extends KeyvTokenStoreOptions,
    Omit<PostgresLockOptions, 'prefix' | 'namespace'> {
  /** Prefix for every key and lock id, so several apps (or tests) can share one table. @default 'sluice' */
  namespace?: string | undefined;
  /** The table `@keyv/postgres` keeps tokens in; created when missing. @default 'sluice_tokens' */
  table?: string | undefined;
  /** Connections in the one pool that tokens and locks share; a held lock keeps one. @default 5 */
  poolSize?: number | undefined;
  /**
   * Wake waiters when a token is written (LISTEN/NOTIFY on a connection of its own); `false`: waiters
   * poll. Behind PgBouncer in transaction pooling a LISTEN does not stay on one session: turn it off
   * there, or give it a direct URL with `listenURL`. @default true
   */
  push?: boolean | undefined;
  /** A direct PostgreSQL URL for the LISTEN connection, when `url` goes through PgBouncer. @default url */
  listenURL?: string | undefined;
  /**
   * `'advisory'`: a transaction advisory lock, on a connection held while the lock is. `'lease'`: a
   * lease row per lock in `lockTable`, decided by the database clock, one statement at a time: what to
   * use behind PgBouncer in transaction pooling. Every process of a fleet must use the same kind.
   * @default 'advisory'
   */
  lock?: 'advisory' | 'lease' | undefined;
  /** The table of lease rows (`lock: 'lease'`), created when missing. @default 'sluice_locks' */
  lockTable?: string | undefined;
}

/** The revision in a Keyv envelope as @keyv/postgres stores it; `undefined` if expired or unreadable. */
function storedRevision(text: string | undefined): number | undefined {
  try {
    const envelope = JSON.parse(text ?? '') as { value?: unknown; expires?: unknown };
    if (typeof envelope.expires === 'number' && envelope.expires <= Date.now()) return undefined;
    return revisionOf(envelope.value);
  } catch {
    return undefined;
  }
}

/** Cuts every socket of a pool that could not end politely (pg keeps them on `_clients`). */
function destroyConnections(pool: Pool): void {
  const clients = (pool as unknown as { _clients?: { connection?: { stream?: { destroy(): void } } }[] })._clients;
  for (const client of clients ?? []) client.connection?.stream?.destroy();
}

/** True when CREATE TABLE IF NOT EXISTS lost a race with another process: the table is there. */
const raced = (error: unknown) => ['23505', '42P07'].includes(String((error as { code?: unknown })?.code));

/**
 * One line for a fleet sharing PostgreSQL: `auth: { grant, ...postgresTokenStore(process.env.DATABASE_URL) }`.
 * Tokens go through `@keyv/postgres`, the lock is an advisory lock (or a lease row: `lock: 'lease'`),
 * and both run on one pg Pool that this store owns (`close()` ends it). Store calls default to a 2 s deadline (`timeoutMs`).
 */
const POSTGRES_OPTIONS = new Set([
  'namespace',
  'table',
  'poolSize',
  'timeoutMs',
  'encryptionKey',
  'shared',
  'queryTimeoutMs',
  'poll',
  'push',
  'listenURL',
  'lock',
  'lockTable',
]);

export function postgresTokenStore(url: string, given: PostgresTokenStoreOptions = {}): SharedTokenStore {
  const options = own(given);
  checkNames('postgresTokenStore', options, POSTGRES_OPTIONS);
  const { namespace = 'sluice', table = 'sluice_tokens', timeoutMs = 2000, poolSize = 5 } = options;
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new ConfigError('postgresTokenStore: url must look like postgres://user@host:5432/db');
  const { listenURL = url, lock: lockKind = 'advisory' } = options;
  if (!/^postgres(ql)?:\/\//.test(listenURL))
    throw new ConfigError('postgresTokenStore: listenURL must look like postgres://user@host:5432/db');
  if (lockKind !== 'advisory' && lockKind !== 'lease')
    throw new ConfigError("postgresTokenStore: lock must be 'advisory' or 'lease'");
  if (!/^[A-Za-z_]\w*$/.test(table)) throw new ConfigError('postgresTokenStore: table must be a plain identifier');
  if (options.lockTable !== undefined && !/^[A-Za-z_]\w*$/.test(options.lockTable))
    throw new ConfigError('postgresTokenStore: lockTable must be a plain identifier');
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
    const swap = async (rawKey: string, serialized: string, expected: number | undefined) => {
      await ensureTable();
      const client = await pool.connect();
      // A checked-out connection has no listener of the pool's: a terminated session must not crash us.
      const onError = () => {};
      client.on('error', onError);
      let healthy = false;
      try {
        await client.query('BEGIN');
        const { rows } = await client.query<{ value: string }>(
          `SELECT value FROM public.${table} WHERE key = $1 FOR UPDATE`,
          [rawKey],
        );
        let written: number | null;
        if (rows.length === 0) {
          if (expected !== undefined) written = 0;
          else
            written = (
              await client.query(
                `INSERT INTO public.${table}(key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
                [rawKey, serialized],
              )
            ).rowCount;
        } else if (storedRevision(rows[0]?.value) !== expected) written = 0;
        else
          written = (await client.query(`UPDATE public.${table} SET value = $2 WHERE key = $1`, [rawKey, serialized]))
            .rowCount;
        await client.query(written === 1 ? 'COMMIT' : 'ROLLBACK');
        healthy = true;
        return written === 1;
      } finally {
        client.off('error', onError);
        client.release(!healthy);
      }
    };
    const inner = keyvStore(
      new Keyv({ store: adapter, namespace }),
      { ...options, timeoutMs, shared: true },
      { rawKey: (key) => `${namespace}:${key}`, swap },
    );
    const lockOptions = { queryTimeoutMs: options.queryTimeoutMs ?? timeoutMs, poll: options.poll, namespace };
    const lock =
      lockKind === 'lease'
        ? postgresLeaseLock(pool, { ...lockOptions, table: options.lockTable })
        : postgresLock(pool, lockOptions);
    return { inner, pool, lock, pg };
  })();
  opened.catch(() => {});
  // Loading the modules is not the store being slow; each query has its own deadline.
  // Push: every write is announced with NOTIFY on a channel named after the namespace (the key as
  // payload, no value); a dedicated LISTEN connection, opened by the first watcher and unref'd, wakes
  // that key's waiters. If it is down, waiters poll as before.
  const channel = `sluice_${createHash('sha256').update(namespace).digest('hex').slice(0, 24)}`;
  const announce = (key: string) => {
    void opened.then(({ pool }) => pool.query('SELECT pg_notify($1, $2)', [channel, key])).catch(() => {});
  };
  const watchers = keyWatchers();
  let listener: Promise<{ end(): Promise<void> } | undefined> | undefined;
  const listen = () =>
    (listener ??= (async () => {
      const { pg } = await opened;
      const client = new pg.Client({ connectionString: listenURL, connectionTimeoutMillis: timeoutMs });
      client.on('error', () => {});
      client.on('notification', (message) => watchers.notify(message.payload ?? ''));
      await client.connect();
      // The LISTEN connection never keeps the process alive: waiters that need it are awaiting anyway.
      (client as unknown as { connection?: { stream?: { unref?(): void } } }).connection?.stream?.unref?.();
      await client.query(`LISTEN ${channel}`);
      return client;
    })().catch(() => undefined));
  const store = withPush(
    {
      shared: true,
      namespace,
      get: async (key) => (await opened).inner.get(key),
      set: async (key, value, ttl) => (await opened).inner.set(key, value, ttl),
      delete: async (key) => (await opened).inner.delete(key),
      atomicSwap: true,
      swap: async (key, value, expected, ttl) => (await opened).inner.swap(key, value, expected, ttl),
    },
    { announce, listen: () => void listen(), watchers, push: options.push },
  );
  const lock: Lock = {
    shared: true,
    namespace,
    acquire: async (name: string, acquire: AcquireOptions) => (await opened).lock.acquire(name, acquire),
  };
  let closing: Promise<void> | undefined;
  return {
    store,
    lock,
    close: () =>
      (closing ??= (async () => {
        const listening = await listener;
        await settlesWithin(listening?.end() ?? Promise.resolve(), 1000);
        const connection = await opened.catch(() => undefined);
        if (!connection) return;
        // An unreachable server never answers a ROLLBACK or a goodbye: after 2 s the sockets are cut.
        const ended = (async () => {
          await connection.lock.close?.();
          await connection.pool.end();
        })();
        if (!(await settlesWithin(ended, 2000))) destroyConnections(connection.pool);
      })()),
  };
}
