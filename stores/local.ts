import { randomUUID } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { link, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, StoreUnavailableError } from '../src/errors.js';
import { checkNames, own } from '../src/own.js';
import { type AcquireOptions, type Lock, type LockHandle, revisionOf, type TokenStore } from '../src/store.js';
import { type EncryptionKeys, encryption } from './encryption.js';
import type { SharedTokenStore } from './keyv.js';
import { backoff, checkAcquire, checkPoll, sleep } from './timeout.js';

export interface LocalTokenStoreOptions {
  /** A sub-directory per namespace, so several apps can share one directory. @default 'sluice' */
  namespace?: string | undefined;
  /** Encrypt entries at rest (AES-256-GCM), as the network stores do. */
  encryptionKey?: EncryptionKeys | undefined;
  /** First and longest pause between lock attempts while waiting, in ms. @default [25, 200] */
  poll?: readonly [number, number] | undefined;
}

/** Versions of one key older than this may be removed once three newer ones exist. */
const KEEP_MS = 60_000;
const UNREADABLE = Object.freeze({ v: 'unreadable' });

interface Version {
  index: number;
  /** The stored value, `undefined` when expired or deleted, UNREADABLE when corrupt. */
  value: unknown;
}

/**
 * Tokens shared by the processes of one machine, in files: no server. Each key is a sequence of
 * numbered versions (`<key>~<n>`); writing version n+1 is an exclusive `link()` of a fully written
 * temporary file, which exactly one writer can win, so a compare-and-set is "read the newest version,
 * compare, link the next one". The lock is an entry of the same kind (`{ owner, until }`): taking it
 * over after its lease ends is a compare-and-set too, so a paused or killed holder cannot extend it
 * once someone else has. Files are mode 0600, in a directory that must not be writable by others.
 */
export function localTokenStore(path: string, given: LocalTokenStoreOptions = {}): SharedTokenStore {
  const options = own(given);
  checkNames('localTokenStore', options, new Set(['namespace', 'encryptionKey', 'poll']));
  const { namespace = 'sluice', poll = [25, 200] } = options;
  checkPoll('localTokenStore', poll);
  if (typeof path !== 'string' || path.length === 0) throw new ConfigError('localTokenStore: path must be a directory');
  if (!/^[\w.-]+$/.test(namespace))
    throw new ConfigError('localTokenStore: namespace must be a plain name ([A-Za-z0-9_.-])');
  const dir = join(resolve(path), namespace);
  prepare(resolve(path));
  prepare(dir);
  const crypt = options.encryptionKey === undefined ? undefined : encryption(options.encryptionKey);
  const fileOf = (key: string, index: number) => join(dir, `${Buffer.from(key).toString('base64url')}~${index}`);

  const failed = (operation: string, cause: unknown): StoreUnavailableError =>
    new StoreUnavailableError(`local token store ${operation} failed`, { cause });

  /** The newest version of `key` (index 0 and no value when there is none). */
  async function newest(key: string): Promise<Version> {
    const prefix = `${Buffer.from(key).toString('base64url')}~`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (cause) {
      throw failed('read', cause);
    }
    let index = 0;
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      const n = Number(name.slice(prefix.length));
      if (Number.isSafeInteger(n) && n > index) index = n;
    }
    if (index === 0) return { index, value: undefined };
    let text: string;
    try {
      text = await readFile(fileOf(key, index), 'utf8');
    } catch (cause) {
      // Removed between the listing and the read (a newer version exists): read again.
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return newest(key);
      throw failed('read', cause);
    }
    return { index, value: decode(key, text) };
  }

  function decode(key: string, text: string): unknown {
    let entry: { value?: unknown; expires?: unknown };
    try {
      entry = JSON.parse(text) as typeof entry;
    } catch {
      return UNREADABLE;
    }
    if (!entry || typeof entry !== 'object') return UNREADABLE;
    if (entry.value === null || entry.value === undefined) return undefined;
    if (typeof entry.expires === 'number' && entry.expires <= Date.now()) return undefined;
    if (!crypt) return entry.value;
    return crypt.open(entry.value, key) ?? { ...UNREADABLE, revision: revisionOf(entry.value) };
  }

  /** Writes version `index` of `key` if nobody has: true when this writer won it. */
  async function claim(key: string, index: number, value: unknown, ttlMs: number): Promise<boolean> {
    const sealed = value === null || !crypt ? value : { ...crypt.seal(value, key), revision: revisionOf(value) };
    const temp = join(dir, `.${randomUUID()}.tmp`);
    try {
      await writeFile(temp, JSON.stringify({ value: sealed, expires: Date.now() + ttlMs }), {
        mode: 0o600,
        flag: 'wx',
      });
      await link(temp, fileOf(key, index));
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw failed('write', cause);
    } finally {
      await unlink(temp).catch(() => {});
    }
    void prune(key, index);
    return true;
  }

  /** Removes versions three or more behind `index` that are older than a minute. */
  async function prune(key: string, index: number): Promise<void> {
    for (let old = index - 3; old >= 1 && old >= index - 12; old--) {
      const file = fileOf(key, old);
      try {
        if (Date.now() - statSync(file).mtimeMs > KEEP_MS) await unlink(file);
      } catch {
        // Gone already.
      }
    }
  }

  /** Writes whatever the newest version is. */
  async function put(key: string, value: unknown, ttlMs: number): Promise<void> {
    for (;;) {
      const { index } = await newest(key);
      if (await claim(key, index + 1, value, ttlMs)) return;
    }
  }

  const store: TokenStore = {
    shared: true,
    namespace,
    atomicSwap: true,
    async get(key) {
      const { value } = await newest(key);
      return value;
    },
    set: (key, value, ttlMs) => put(key, value, ttlMs),
    delete: (key) => put(key, null, 60_000),
    async swap(key, value, expected, ttlMs) {
      const current = await newest(key);
      const revision =
        current.value === undefined || current.value === UNREADABLE ? undefined : revisionOf(current.value);
      if (revision !== expected) return false;
      return claim(key, current.index + 1, value, ttlMs);
    },
  };

  const lock: Lock = {
    shared: true,
    namespace,
    async acquire(name: string, acquire: AcquireOptions): Promise<LockHandle | undefined> {
      checkAcquire('localTokenStore lock', acquire);
      const { ttlMs, waitMs, signal } = acquire;
      const key = `lock:${name}`;
      const owner = randomUUID();
      const giveUpAt = Date.now() + waitMs;
      const holder = (value: unknown) => value as { owner?: unknown; until?: unknown } | undefined;
      const ours = async () => {
        const now = holder((await newest(key)).value);
        return now?.owner === owner && typeof now.until === 'number' && now.until > Date.now();
      };
      /** Replaces the newest version if `may(value)` says so: a compare-and-set on the lock entry. */
      const replaceIf = async (may: (value: ReturnType<typeof holder>) => boolean, next: unknown, ms: number) => {
        const current = await newest(key);
        if (!may(holder(current.value))) return false;
        return claim(key, current.index + 1, next, ms);
      };
      for (let round = 0; ; round++) {
        const taken = await replaceIf(
          (value) => !(typeof value?.until === 'number' && value.until > Date.now() && value.owner),
          { owner, until: Date.now() + ttlMs },
          ttlMs,
        );
        if (taken) {
          return {
            key: name,
            owner,
            isHeld: ours,
            extend: (ms: number) =>
              replaceIf(
                (value) => value?.owner === owner && typeof value.until === 'number' && value.until > Date.now(),
                { owner, until: Date.now() + ms },
                ms,
              ),
            release: async () => {
              await replaceIf((value) => value?.owner === owner, { owner: null, until: 0 }, 60_000).catch(() => false);
            },
          };
        }
        const left = giveUpAt - Date.now();
        if (left <= 0 || signal?.aborted) return undefined;
        await sleep(Math.min(left, backoff(round, poll)), signal);
      }
    },
  };

  return { store, lock, close: async () => {} };
}

/** Creates `dir` (mode 0700) if needed; refuses one that others may write to or that is not ours. */
function prepare(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new ConfigError(`localTokenStore: cannot create ${dir}: ${(cause as Error).message}`);
  }
  const stat = statSync(dir);
  if (!stat.isDirectory()) throw new ConfigError(`localTokenStore: ${dir} is not a directory`);
  if ((stat.mode & 0o002) !== 0 && (stat.mode & 0o1000) === 0) {
    throw new ConfigError(
      `localTokenStore: ${dir} is writable by every user; use a directory only you can write to (e.g. mode 0700)`,
    );
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0 && stat.uid !== process.getuid()) {
    throw new ConfigError(`localTokenStore: ${dir} belongs to another user`);
  }
}
