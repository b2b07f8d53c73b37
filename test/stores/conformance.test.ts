import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import pg from 'pg';
import { afterAll } from 'vitest';
import {
  keyvTokenStore,
  localTokenStore,
  memoryLock,
  postgresLeaseLock,
  postgresLock,
  postgresTokenStore,
  type RedisCommander,
  redisLock,
  redisTokenStore,
  type SharedTokenStore,
} from '../../stores/index.js';
import { hasPgBouncer, startPgBouncer } from '../helpers/pgbouncer.js';
import { startRedisCluster, startRedisSentinel } from '../helpers/redis-topology.js';
import { needs, POSTGRES_URL, REDIS_URL } from '../helpers/services.js';
import { lockConformance, storeConformance, unique } from './conformance.js';

const redis = await needs('redis');
const postgres = await needs('postgres');
const KEY = Buffer.alloc(32, 7);

/** Opens helper stores and closes them (connections included) when the suite is done. */
function helpers(open: (namespace: string) => SharedTokenStore) {
  return async (namespace: string) => {
    const shared = open(namespace);
    return { ...shared.store, close: shared.close };
  };
}

const memory = new Map();
storeConformance('in-memory Keyv', (namespace) => keyvTokenStore(new Keyv({ store: memory, namespace })));
storeConformance('in-memory Keyv, encrypted', (namespace) =>
  keyvTokenStore(new Keyv({ store: memory, namespace }), { encryptionKey: 'a passphrase' }),
);
lockConformance('in-process', () => memoryLock());

const localDir = mkdtempSync(join(tmpdir(), 'sluice-conformance-'));
afterAll(() => rmSync(localDir, { recursive: true, force: true }));
storeConformance('local files', (namespace) => localTokenStore(localDir, { namespace }).store);
storeConformance(
  'local files, encrypted',
  (namespace) => localTokenStore(localDir, { namespace, encryptionKey: KEY }).store,
);
const local = localTokenStore(localDir, { namespace: unique('conformance-lock') });
lockConformance('local files', () => local.lock);

if (redis) {
  storeConformance(
    'Redis',
    helpers((namespace) => redisTokenStore(REDIS_URL, { namespace })),
  );
  storeConformance(
    'Redis, encrypted',
    helpers((namespace) => redisTokenStore(REDIS_URL, { namespace, encryptionKey: KEY })),
  );
  const shared = redisTokenStore(REDIS_URL, { namespace: unique('conformance-lock') });
  lockConformance(
    'Redis (redisTokenStore)',
    () => shared.lock,
    () => shared.close(),
  );
  // The lock on the very client an @keyv/redis adapter opened: one connection for tokens and lock.
  const adapter = new KeyvRedis(REDIS_URL);
  lockConformance(
    'Redis (redisLock on the @keyv/redis client)',
    async () => redisLock((await adapter.getClient()) as RedisCommander),
    () => adapter.disconnect(),
  );
}
// The topologies big fleets run: a 3-master Cluster and a Sentinel-managed master with a replica,
// started by this file from Debian's redis-server (they fail loudly when it is missing).
if (redis) {
  const [cluster, sentinel] = await Promise.all([startRedisCluster(), startRedisSentinel()]);
  afterAll(() => Promise.all([cluster.stop(), sentinel.stop()]));
  const clusterTarget = { cluster: [cluster.url] };
  const sentinelTarget = {
    name: sentinel.name,
    sentinels: sentinel.sentinels.map(({ host, port }) => `redis://${host}:${port}`),
  };
  storeConformance(
    'Redis Cluster',
    helpers((namespace) => redisTokenStore(clusterTarget, { namespace })),
  );
  storeConformance(
    'Redis Sentinel',
    helpers((namespace) => redisTokenStore(sentinelTarget, { namespace, encryptionKey: KEY })),
  );
  const onCluster = redisTokenStore(clusterTarget, { namespace: unique('conformance-lock') });
  lockConformance(
    'Redis Cluster',
    () => onCluster.lock,
    () => onCluster.close(),
  );
  const onSentinel = redisTokenStore(sentinelTarget, { namespace: unique('conformance-lock') });
  lockConformance(
    'Redis Sentinel',
    () => onSentinel.lock,
    () => onSentinel.close(),
  );
}
if (postgres) {
  storeConformance(
    'PostgreSQL',
    helpers((namespace) => postgresTokenStore(POSTGRES_URL, { namespace })),
  );
  storeConformance(
    'PostgreSQL, encrypted',
    helpers((namespace) => postgresTokenStore(POSTGRES_URL, { namespace, encryptionKey: ['new-key', 'old-key'] })),
  );
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 20 });
  lockConformance(
    'PostgreSQL',
    () => postgresLock(pool, { prefix: unique('conformance') }),
    () => pool.end(),
  );
  const leasePool = new pg.Pool({ connectionString: POSTGRES_URL, max: 20 });
  lockConformance(
    'PostgreSQL lease rows',
    () => postgresLeaseLock(leasePool, { namespace: unique('conformance') }),
    () => leasePool.end(),
  );
}
// Through PgBouncer in transaction pooling: the store (lease lock, LISTEN straight to PostgreSQL) and the
// lease lock on a pool of PgBouncer connections.
if (postgres && hasPgBouncer()) {
  const bouncer = await startPgBouncer(4);
  afterAll(() => bouncer.stop());
  storeConformance(
    'PostgreSQL through PgBouncer',
    helpers((namespace) =>
      postgresTokenStore(bouncer.url, { namespace, lock: 'lease', listenURL: POSTGRES_URL, encryptionKey: KEY }),
    ),
  );
  const pool = new pg.Pool({ connectionString: bouncer.url, max: 20 });
  lockConformance(
    'PostgreSQL lease rows through PgBouncer',
    () => postgresLeaseLock(pool, { namespace: unique('conformance') }),
    () => pool.end(),
  );
}
