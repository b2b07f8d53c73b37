import Keyv from 'keyv';
import pg from 'pg';
import { keyvTokenStore, memoryLock, postgresLock, postgresTokenStore, redisTokenStore } from '../../stores/index.js';
import { needs, POSTGRES_URL, REDIS_URL } from '../helpers/services.js';
import { lockConformance, storeConformance } from './conformance.js';

const redis = await needs('redis');
const postgres = await needs('postgres');
const namespace = `conf-${process.pid}`;

storeConformance('in-memory Keyv', () => keyvTokenStore(new Keyv()));
storeConformance('in-memory Keyv, encrypted', () => keyvTokenStore(new Keyv(), { encryptionKey: 'passphrase' }));
lockConformance('in-process', () => memoryLock());

if (redis) {
  storeConformance('Redis', () => redisTokenStore(REDIS_URL, { namespace }).store);
  storeConformance('Redis, encrypted', () => redisTokenStore(REDIS_URL, { namespace, encryptionKey: 'k1' }).store);
  const shared = redisTokenStore(REDIS_URL, { namespace });
  lockConformance(
    'Redis',
    () => shared.lock,
    () => shared.close(),
  );
}
if (postgres) {
  storeConformance('PostgreSQL', () => postgresTokenStore(POSTGRES_URL, { namespace }).store);
  storeConformance(
    'PostgreSQL, encrypted',
    () => postgresTokenStore(POSTGRES_URL, { namespace, encryptionKey: ['new-key', 'old-key'] }).store,
  );
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 20 });
  lockConformance(
    'PostgreSQL',
    () => postgresLock(pool),
    () => pool.end(),
  );
}
