export { type EncryptionKey, type EncryptionKeys, encryption, type SealedEntry } from './encryption.js';
export { type KeyvTokenStoreOptions, keyvRedisLock, keyvTokenStore, type SharedTokenStore } from './keyv.js';
export { type LocalTokenStoreOptions, localTokenStore } from './local.js';
export { memoryLock } from './memory-lock.js';
export { type PostgresTokenStoreOptions, postgresTokenStore } from './postgres.js';
export { type PgQueryable, type PostgresLeaseLockOptions, postgresLeaseLock } from './postgres-lease.js';
export { type PostgresLockOptions, postgresLock } from './postgres-lock.js';
export { type RedisTarget, type RedisTokenStoreOptions, redisTokenStore } from './redis.js';
export { type RedisCommander, type RedisLockOptions, redisLock } from './redis-lock.js';
