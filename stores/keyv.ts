import type Keyv from 'keyv';
import { ConfigError, StoreUnavailableError } from '../src/errors.js';
import type { TokenStore } from '../src/store.js';
import { type EncryptionKeys, encryption } from './encryption.js';
import { bounded } from './timeout.js';

export interface KeyvTokenStoreOptions {
  /** Longest wait for any one store call, in ms. @default 1000 */
  timeoutMs?: number;
  /** Encrypt entries at rest (AES-256-GCM). A list rotates keys: the first encrypts, all decrypt. */
  encryptionKey?: EncryptionKeys;
  /** Whether other processes see this store. @default false for an in-memory Keyv, true otherwise */
  shared?: boolean;
}

/** Stands in for an entry that could not be decrypted: the token manager ignores and replaces it. */
const UNREADABLE = Object.freeze({ v: 'unreadable' });

/**
 * A TokenStore on any Keyv. Keyv swallows store errors by default (a failed write returns true, a failed
 * read looks like a miss); here they surface: errors are thrown, `error` events are listened to, every
 * call has a deadline, and all of it becomes `StoreUnavailableError`, never "no token".
 */
export function keyvTokenStore(keyv: Keyv, options: KeyvTokenStoreOptions = {}): TokenStore {
  const { timeoutMs = 1000, encryptionKey } = options;
  if (!keyv || typeof keyv.get !== 'function') throw new ConfigError('keyvTokenStore needs a Keyv instance');
  if (!(timeoutMs > 0)) throw new ConfigError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  keyv.throwOnErrors = true;
  // With a listener, an adapter's error event can neither crash the process nor vanish unseen; the
  // failing call itself throws (throwOnErrors), which is where it is reported.
  keyv.on('error', () => {});
  const crypt = encryptionKey === undefined ? undefined : encryption(encryptionKey);
  const shared = options.shared ?? !(keyv.opts.store instanceof Map);
  return {
    shared,
    async get(key) {
      const raw = await bounded('token store read', timeoutMs, () => keyv.get(key));
      if (raw === undefined || raw === null || !crypt) return raw ?? undefined;
      return crypt.open(raw, key) ?? UNREADABLE;
    },
    async set(key, value, ttlMs) {
      const stored = crypt ? crypt.seal(value, key) : value;
      const ok = await bounded('token store write', timeoutMs, () => keyv.set(key, stored, ttlMs));
      if (ok === false) throw new StoreUnavailableError('token store write was refused');
    },
    async delete(key) {
      await bounded('token store delete', timeoutMs, () => keyv.delete(key));
    },
    async close() {
      await keyv.disconnect().catch(() => {});
    },
  };
}
