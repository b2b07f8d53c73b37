import { createHash, randomUUID } from 'node:crypto';
import { type FSWatcher, linkSync, lstatSync, mkdirSync, rmSync, statSync, watch, writeFileSync } from 'node:fs';
import { link, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, StoreUnavailableError } from '../src/errors.js';
import { checkNames, own } from '../src/own.js';
import { type AcquireOptions, type Lock, type LockHandle, revisionOf, type TokenStore } from '../src/store.js';
import { type EncryptionKeys, encryption } from './encryption.js';
import type { SharedTokenStore } from './keyv.js';
import { backoff, checkAcquire, checkPoll, sleep } from './timeout.js';
import { keyWatchers } from './watchers.js';

export interface LocalTokenStoreOptions {
  /** A sub-directory per namespace, so several apps can share one directory. @default 'sluice' */
  namespace?: string | undefined;
  /** Encrypt entries at rest (AES-256-GCM), as the network stores do. */
  encryptionKey?: EncryptionKeys | undefined;
  /** First and longest pause between lock attempts while waiting, in ms. @default [25, 200] */
  poll?: readonly [number, number] | undefined;
  /** Wake waiters when a version is written (a file watch); `false`: waiters poll. @default true */
  push?: boolean | undefined;
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
  checkNames('localTokenStore', options, new Set(['namespace', 'encryptionKey', 'poll', 'push']));
  const { namespace = 'sluice', poll = [25, 200] } = options;
  checkPoll('localTokenStore', poll);
  if (typeof path !== 'string' || path.length === 0) throw new ConfigError('localTokenStore: path must be a directory');
  if (!/^[\w-][\w.-]*$/.test(namespace))
    throw new ConfigError('localTokenStore: namespace must be a plain name ([A-Za-z0-9_.-], not starting with a dot)');
  const dir = join(resolve(path), namespace);
  prepare(resolve(path), false);
  prepare(dir, true);
  probeLink(dir);
  const crypt = options.encryptionKey === undefined ? undefined : encryption(options.encryptionKey);
  /** A file name for `key`: its base64url, or a hash of it when that would be too long for a file name. */
  const nameOf = (key: string) => {
    const plain = Buffer.from(key).toString('base64url');
    return plain.length <= 160 ? plain : `=${createHash('sha256').update(key).digest('base64url')}`;
  };
  const fileOf = (key: string, index: number) => join(dir, `${nameOf(key)}~${index}`);
  const isLock = (key: string) => key.startsWith('lock:');

  const failed = (operation: string, cause: unknown): StoreUnavailableError =>
    new StoreUnavailableError(`local token store ${operation} failed`, { cause });

  /** The newest version of `key` (index 0 and no value when there is none). */
  async function newest(key: string, attempt = 0): Promise<Version> {
    const prefix = `${nameOf(key)}~`;
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
      // Removed between the listing and the read (a newer version exists): read again, a few times.
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 5) return newest(key, attempt + 1);
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
    // Lock entries hold no secret (an owner id, an expiry) and are never sealed: processes with
    // different keys still exclude each other.
    if (!crypt || isLock(key)) return entry.value;
    return crypt.open(entry.value, key) ?? { ...UNREADABLE, revision: revisionOf(entry.value) };
  }

  /** Writes version `index` of `key` if nobody has: true when this writer won it. */
  async function claim(key: string, index: number, value: unknown, ttlMs: number): Promise<boolean> {
    const sealed =
      value === null || !crypt || isLock(key) ? value : { ...crypt.seal(value, key), revision: revisionOf(value) };
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
    // The version this one follows must still be there. If it was pruned, newer versions exist and this
    // writer (paused since its read) filled a gap below them: its write is lost, not won.
    if (index > 1 && !(await exists(fileOf(key, index - 1)))) {
      await unlink(fileOf(key, index)).catch(() => {});
      return false;
    }
    // Every eighth version sweeps the old ones: a listing per write would cost more than it saves.
    if (index % 8 === 0) void prune(key, index);
    return true;
  }

  /**
   * Removes this key's versions three or more behind `index` that are older than a minute, and temp
   * files a crashed writer left. Lowest first: a gap only ever opens below versions that stay.
   */
  async function prune(key: string, index: number): Promise<void> {
    const prefix = `${nameOf(key)}~`;
    const now = Date.now();
    const old: number[] = [];
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(prefix)) {
        const n = Number(name.slice(prefix.length));
        if (Number.isSafeInteger(n) && n <= index - 3) old.push(n);
      } else if (name.endsWith('.tmp')) {
        await unlinkIfOlder(join(dir, name), now);
      }
    }
    for (const n of old.sort((a, b) => a - b)) await unlinkIfOlder(fileOf(key, n), now);
  }

  /** Writes whatever the newest version is. */
  async function put(key: string, value: unknown, ttlMs: number): Promise<void> {
    for (;;) {
      const { index } = await newest(key);
      if (await claim(key, index + 1, value, ttlMs)) return;
    }
  }

  // Push: one unref'd watch on the directory, started by the first watcher, tells the watchers of a
  // key when a version of that key (not of its lock) is written. Polling stays as the fallback.
  const watchers = keyWatchers();
  let watcher: FSWatcher | undefined;
  const onFile = (_event: string, file: string | Buffer | null) => {
    const name = String(file ?? '');
    const at = name.lastIndexOf('~');
    if (at > 0) watchers.notify(name.slice(0, at));
  };

  const store: TokenStore = {
    shared: true,
    namespace,
    atomicSwap: true,
    watch(key: string, onChange: () => void) {
      if (!watcher) {
        try {
          watcher = watch(dir, { persistent: false }, onFile);
          watcher.on('error', () => {
            watcher?.close();
            watcher = undefined;
          });
        } catch {
          // No watch here (some filesystems): waiters poll.
        }
      }
      return watchers.add(nameOf(key), onChange);
    },
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

  // Without push, waiters poll (they do whenever a store has no watch).
  if (options.push === false) delete store.watch;
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

  return {
    store,
    lock,
    close: async () => {
      watcher?.close();
      watcher = undefined;
    },
  };
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

async function unlinkIfOlder(file: string, now: number): Promise<void> {
  try {
    if (now - (await stat(file)).mtimeMs > KEEP_MS) await unlink(file);
  } catch {
    // Gone already.
  }
}

/** Fails at construction, not at the first write, on a filesystem without hard links (FAT, some mounts). */
function probeLink(dir: string): void {
  const probe = join(dir, `.${randomUUID()}.tmp`);
  try {
    writeFileSync(probe, '', { mode: 0o600, flag: 'wx' });
    linkSync(probe, `${probe}.link`);
  } catch (cause) {
    throw new ConfigError(`localTokenStore: ${dir} does not support hard links (${(cause as Error).message})`);
  } finally {
    rmSync(probe, { force: true });
    rmSync(`${probe}.link`, { force: true });
  }
}

/**
 * Creates `dir` (mode 0700) if needed. Refuses one that is not ours, and, for the directory the files
 * live in (`strict`), a symlink or one anyone else may write to, sticky or not (another user could plant
 * a newer version). The parent may be a sticky shared directory such as /tmp.
 */
function prepare(dir: string, strict: boolean): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new ConfigError(`localTokenStore: cannot create ${dir}: ${(cause as Error).message}`);
  }
  const info = strict ? lstatSync(dir) : statSync(dir);
  if (!info.isDirectory())
    throw new ConfigError(`localTokenStore: ${dir} is not a directory (nor a symlink to one we accept)`);
  const others = (info.mode & 0o022) !== 0;
  if (strict ? others : (info.mode & 0o002) !== 0 && (info.mode & 0o1000) === 0) {
    throw new ConfigError(
      `localTokenStore: ${dir} is writable by other users; use a directory only you can write to (e.g. mode 0700)`,
    );
  }
  if (strict && typeof process.getuid === 'function' && info.uid !== process.getuid()) {
    throw new ConfigError(`localTokenStore: ${dir} belongs to another user`);
  }
}
