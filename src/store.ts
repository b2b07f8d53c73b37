/**
 * What the token manager needs from persistence. stores/ implements these on Keyv, Redis and
 * PostgreSQL; src/ only knows the interfaces.
 */

/** A key-value store for token entries. Every call is bounded in time. */
export interface TokenStore {
  /**
   * The namespace the store's keys live in, when it has one: a lock with a namespace must name the same
   * one, or processes on the two would not exclude each other.
   */
  readonly namespace?: string | undefined;
  /**
   * The entry under `key`, or `undefined` when there is none. A store that cannot be reached throws
   * `StoreUnavailableError`: a failure is never reported as "no entry".
   */
  get(key: string): Promise<unknown>;
  /** Writes the whole entry with a time to live. Throws `StoreUnavailableError` on failure. */
  set(key: string, value: unknown, ttlMs: number): Promise<void>;
  /**
   * Compare-and-set: writes `value` only if the entry under `key` still has revision `expected`, and
   * resolves whether it did. `undefined` stands for "no entry, or one whose revision cannot be read"
   * (missing, expired, corrupt). `value.revision` is the new entry's revision. Throws
   * `StoreUnavailableError` when the store cannot answer. Without it, the token manager reads,
   * compares and writes, which is atomic only within one process.
   */
  swap?(key: string, value: Revisioned, expected: number | undefined, ttlMs: number): Promise<boolean>;
  /** True when `swap` is atomic for every process sharing the store (Redis, PostgreSQL, process memory). */
  readonly atomicSwap?: boolean;
  delete(key: string): Promise<void>;
  /** True when other processes can see this store (Redis, PostgreSQL); false for process memory. */
  readonly shared: boolean;
  /**
   * Push instead of poll: calls `onChange` soon after anyone writes an entry under `key` (now and then
   * spuriously). Returns the unsubscribe function. Optional: without it, waiters poll.
   */
  watch?(key: string, onChange: () => void): () => void;
  /** Releases connections the store owns. */
  close?(): Promise<void>;
}

/** A store entry that carries its revision in the clear (sealed entries keep it outside the ciphertext). */
export interface Revisioned {
  readonly revision: number;
  readonly [field: string]: unknown;
}

/** The revision of a stored value, or `undefined` when it has none that can be read. */
export function revisionOf(value: unknown): number | undefined {
  const revision = (value as { revision?: unknown } | null | undefined)?.revision;
  return typeof revision === 'number' && Number.isSafeInteger(revision) ? revision : undefined;
}

/**
 * Compare-and-set for a store that has none: read, compare, write. Atomic only where the caller makes
 * it so (one writer at a time); across processes two writers can interleave between read and write.
 */
export async function readCompareWrite(
  store: Pick<TokenStore, 'get' | 'set'>,
  key: string,
  value: Revisioned,
  expected: number | undefined,
  ttlMs: number,
): Promise<boolean> {
  if (revisionOf(await store.get(key)) !== expected) return false;
  await store.set(key, value, ttlMs);
  return true;
}

export interface AcquireOptions {
  /** How long the lock lives if its holder dies without releasing it. */
  ttlMs: number;
  /** How long to wait for it before giving up (resolving `undefined`). */
  waitMs: number;
  signal?: AbortSignal | undefined;
}

export interface LockHandle {
  readonly key: string;
  /** Unique to this acquisition; release only succeeds for the owner. */
  readonly owner: string;
  /**
   * True while the lock is certainly still ours: the local expiry has not passed and, for shared
   * locks, the server still names us as owner. A holder checks this right before it writes.
   */
  isHeld(): Promise<boolean>;
  /**
   * Pushes the expiry out to `ttlMs` from now if we still own the lock; false when we no longer do.
   * The token manager calls it while a slow refresh runs, so a live holder keeps its lock and a dead
   * one loses it within one TTL. Optional: a lock without it simply expires after its TTL.
   */
  extend?(ttlMs: number): Promise<boolean>;
  /** Releases the lock if we still own it; never throws. */
  release(): Promise<void>;
}

/** Mutual exclusion across the holders that share it (one process, or many through a server). */
export interface Lock {
  /**
   * Resolves to a handle once acquired, or `undefined` if `waitMs` passed first. A lock server that
   * cannot be reached throws `StoreUnavailableError`.
   */
  acquire(key: string, options: AcquireOptions): Promise<LockHandle | undefined>;
  readonly shared: boolean;
  /** The namespace of the lock's keys, when it has one (see `TokenStore.namespace`). */
  readonly namespace?: string | undefined;
  close?(): Promise<void>;
}
