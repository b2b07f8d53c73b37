import Keyv from 'keyv';
import { ConfigError, StoreUnavailableError } from '../src/errors.js';
import { checkNames, own } from '../src/own.js';
import { type Lock, readCompareWrite, revisionOf, type TokenStore } from '../src/store.js';
import { type EncryptionKeys, encryption } from './encryption.js';
import { type RedisLockOptions, redisLock } from './redis-lock.js';
import { bounded } from './timeout.js';

export interface KeyvTokenStoreOptions {
  /** Longest wait for any one store call, in ms. @default 1000 */
  timeoutMs?: number | undefined;
  /**
   * Encrypt entries at rest (AES-256-GCM): a 32-byte Buffer, 32 bytes in base64, or a passphrase
   * (hashed with SHA-256). A list rotates keys: the first encrypts, all decrypt.
   */
  encryptionKey?: EncryptionKeys | undefined;
  /** Whether other processes see this store. @default false for an in-memory Keyv (a Map), true otherwise */
  shared?: boolean | undefined;
}

/** A store and the lock for the same engine, on one connection where it can be, closed together. */
export interface SharedTokenStore {
  store: TokenStore;
  lock: Lock;
  /** Closes the connections both use; safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Stands in for an entry that is there but cannot be read (not JSON, tampered with, sealed with a key
 * we lack): it is not "no entry", and the token manager, which accepts only valid token sets,
 * ignores it, reports it and replaces it.
 */
const UNREADABLE = Object.freeze({ v: 'unreadable' });
const GUARDED = Symbol.for('sluice.keyv.guarded');

/**
 * Keyv parses entries inside `get`, so a value that is not JSON would throw from `get` and look like
 * an unreachable store. Parse errors become UNREADABLE instead: a corrupt entry is replaced, never a
 * reason to stop sharing.
 */
function guardDeserialize(keyv: Keyv): void {
  const parse = keyv.deserialize as ((data: string) => unknown) & { [GUARDED]?: true };
  if (!parse || parse[GUARDED]) return;
  const guarded = async (data: string) => {
    try {
      return await parse(data);
    } catch {
      return { value: UNREADABLE };
    }
  };
  keyv.deserialize = Object.assign(guarded, { [GUARDED]: true as const }) as Keyv['deserialize'];
}

/**
 * A TokenStore on any Keyv. Keyv swallows store errors by default (a failed write returns true, a failed
 * read looks like a miss, `error` events with no listener vanish); here they surface: the Keyv is
 * switched to `throwOnErrors`, its `error` events are listened to, every call has a deadline, and all
 * of it becomes `StoreUnavailableError` (naming the operation, never a key or a value), never "no token".
 */
export function keyvTokenStore(keyv: Keyv, given: KeyvTokenStoreOptions = {}): TokenStore {
  const options = own(given);
  checkNames('keyvTokenStore', options, new Set(['timeoutMs', 'encryptionKey', 'shared']));
  const store = keyvStore(canonicalView(keyv), options);
  const legacy = legacyView(keyv);
  if (!legacy) return store;
  // Before this key scheme, a Keyv with useKeyPrefix on over @keyv/redis wrote `<ns>::<ns>:sluice:…`.
  // An entry found only there is read (and then written under the scheme's key), so an upgrade or a
  // rolling deploy keeps its tokens, refresh tokens included.
  const old = keyvStore(legacy, { ...options, shared: store.shared });
  return {
    ...store,
    async get(key) {
      const value = await store.get(key);
      return value === undefined ? old.get(key) : value;
    },
    async swap(key, value, expected, ttlMs) {
      if (await store.swap(key, value, expected, ttlMs)) return true;
      // The revision expected may be the old entry's: then the write moves it to the scheme's key.
      if (expected === undefined || revisionOf(await old.get(key)) !== expected) return false;
      if (!(await store.swap(key, value, undefined, ttlMs))) return false;
      await old.delete(key).catch(() => {});
      return true;
    },
  };
}

/** One Keyv per adapter, namespace and prefixing: each Keyv adds a listener to its adapter. */
const views = new WeakMap<object, Map<string, Keyv>>();
function viewOf(store: object, namespace: string | undefined, useKeyPrefix: boolean): Keyv {
  let byName = views.get(store);
  if (!byName) {
    byName = new Map();
    views.set(store, byName);
  }
  const name = `${useKeyPrefix}:${namespace ?? ''}`;
  let view = byName.get(name);
  if (!view) {
    // An undefined namespace (a Map) stays undefined: Keyv's default would re-prefix the caller's keys.
    view = new Keyv({ store, namespace: namespace as string, useKeyPrefix });
    byName.set(name, view);
  }
  return view;
}

/** Where the caller's Keyv itself put entries, when that is not the scheme's key; else undefined. */
function legacyView(keyv: Keyv): Keyv | undefined {
  const adapter = keyv.store as { keyPrefixSeparator?: unknown };
  if (typeof adapter.keyPrefixSeparator !== 'string' || !keyv.useKeyPrefix || !keyv.namespace) return undefined;
  return viewOf(keyv.store, keyv.namespace, true);
}

interface RedisAdapterLike {
  getClient?: () => Promise<{ sendCommand(args: string[]): Promise<unknown> }>;
  isCluster?: () => boolean;
}

/**
 * The lock that goes with a Keyv on `@keyv/redis` (a single Redis, Sentinel-less): `redisLock` on the
 * Keyv's own connection, in the Keyv's namespace, so its keys follow the same scheme as the tokens'.
 * For other adapters pass the engine's lock with the same `namespace` (`postgresLock(pool, { namespace })`).
 */
export function keyvRedisLock(keyv: Keyv, options: Omit<RedisLockOptions, 'namespace' | 'prefix'> = {}): Lock {
  const adapter = keyv?.store as RedisAdapterLike | undefined;
  if (typeof adapter?.getClient !== 'function' || adapter.isCluster?.() !== false) {
    throw new ConfigError(
      'keyvRedisLock needs a Keyv on @keyv/redis with a single Redis; otherwise pass redisLock(client)',
    );
  }
  const connect = adapter.getClient.bind(adapter);
  return redisLock(
    { sendCommand: async (args) => (await connect()).sendCommand(args) },
    { ...own(options), namespace: keyv.namespace },
  );
}

/**
 * Sluice's key scheme on any Keyv: the token key (`sluice:token:<hash>`) under the Keyv's namespace,
 * prefixed exactly once, by the adapter where it prefixes keys itself (`<ns>::sluice:token:...` on
 * @keyv/redis) and by Keyv otherwise (`<ns>:sluice:token:...` on @keyv/postgres and the rest), in
 * Keyv's default JSON. That is what `redisTokenStore` and `postgresTokenStore` write for the same
 * namespace, whatever `useKeyPrefix`, serializer or compression the caller's Keyv has: the store
 * works on its own Keyv over the same adapter and namespace, and leaves the caller's untouched.
 */
export function canonicalView(keyv: Keyv): Keyv {
  if (!keyv || typeof keyv.get !== 'function' || typeof keyv.store !== 'object' || keyv.store === null) {
    throw new ConfigError('keyvTokenStore needs a Keyv instance');
  }
  const adapter = keyv.store as { keyPrefixSeparator?: unknown; namespace?: unknown };
  const namespace = keyv.namespace;
  if (!(adapter instanceof Map) && (typeof namespace !== 'string' || namespace === '')) {
    throw new ConfigError(
      "keyvTokenStore: give the Keyv a namespace (new Keyv({ store, namespace: 'sluice' })): without one its keys mix with every other key in the database, and no other Sluice process finds them",
    );
  }
  const prefixesItself = typeof adapter.keyPrefixSeparator === 'string';
  return viewOf(keyv.store, namespace, !prefixesItself);
}

/**
 * What an engine does atomically on the server: replace the raw entry under `rawKey` with `serialized`
 * (Keyv's own envelope) if the entry's revision is still `expected`, reading an expired, corrupt or
 * missing entry as having none.
 */
export interface EngineSwap {
  rawKey(key: string): string;
  swap(rawKey: string, serialized: string, expected: number | undefined, ttlMs: number): Promise<boolean>;
}

/** `keyvTokenStore`, plus the engine's own compare-and-set when the store is Redis or PostgreSQL. */
export function keyvStore(
  keyv: Keyv,
  options: KeyvTokenStoreOptions,
  engine?: EngineSwap,
): TokenStore & Required<Pick<TokenStore, 'swap'>> {
  const { timeoutMs = 1000, encryptionKey } = options;
  if (!keyv || typeof keyv.get !== 'function') throw new ConfigError('keyvTokenStore needs a Keyv instance');
  if (!(timeoutMs > 0)) throw new ConfigError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  keyv.throwOnErrors = true;
  guardDeserialize(keyv);
  // With a listener, an adapter's error event can neither crash the process nor vanish unseen; the
  // failing call itself throws (throwOnErrors), which is where it is reported.
  if (!keyv.listeners('error').includes(ignore)) keyv.on('error', ignore);
  const crypt = encryptionKey === undefined ? undefined : encryption(encryptionKey);
  const shared = options.shared ?? !(keyv.opts.store instanceof Map);
  // The revision stays outside the ciphertext: the engine compares it without any key.
  const seal = (key: string, value: unknown) =>
    crypt ? { ...crypt.seal(value, key), revision: revisionOf(value) } : value;
  const get = async (key: string): Promise<unknown> => {
    const raw = await bounded('token store read', timeoutMs, () => keyv.get(key));
    if (raw === undefined || raw === null) return undefined;
    if (!crypt || raw === UNREADABLE) return raw;
    return crypt.open(raw, key) ?? { ...UNREADABLE, revision: revisionOf(raw) };
  };
  const set = async (key: string, value: unknown, ttlMs: number) => {
    const ok = await bounded('token store write', timeoutMs, () => keyv.set(key, seal(key, value), ttlMs));
    if (ok === false) throw new StoreUnavailableError('token store write was refused');
  };
  const local = serializedFor(keyv.opts.store);
  return {
    shared,
    namespace: shared ? keyv.namespace : undefined,
    atomicSwap: engine !== undefined || !shared,
    get,
    set,
    async swap(key, value, expected, ttlMs) {
      if (engine) {
        const envelope = { value: seal(key, value), expires: Date.now() + ttlMs };
        const text = keyv.serialize ? await keyv.serialize(envelope) : JSON.stringify(envelope);
        return bounded('token store swap', timeoutMs, () => engine.swap(engine.rawKey(key), text, expected, ttlMs));
      }
      // No compare-and-set on the server: read, compare and write, one at a time in this process.
      return local(key, () => readCompareWrite({ get, set }, key, value, expected, ttlMs));
    },
    async delete(key) {
      await bounded('token store delete', timeoutMs, () => keyv.delete(key));
    },
    async close() {
      await keyv.disconnect().catch(() => {});
    },
  };
}

/**
 * Runs the work given for one key one after another: per storage object, so that two Keyv instances
 * over one Map (two clients in a process) take turns too.
 */
const queues = new WeakMap<object, ReturnType<typeof serialized>>();
function serializedFor(storage: unknown) {
  if (typeof storage !== 'object' || storage === null) return serialized();
  let queue = queues.get(storage);
  if (!queue) {
    queue = serialized();
    queues.set(storage, queue);
  }
  return queue;
}

function serialized() {
  const tails = new Map<string, Promise<unknown>>();
  return function inTurn<T>(key: string, work: () => Promise<T>): Promise<T> {
    const result = (tails.get(key) ?? Promise.resolve()).then(work, work);
    const tail = result.catch(() => {});
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return result;
  };
}

function ignore(): void {}
