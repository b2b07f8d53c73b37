import type { TokenStore } from '../src/store.js';

/** The callbacks waiting on each key, for stores that push their writes to waiters (`TokenStore.watch`). */
export function keyWatchers() {
  const byKey = new Map<string, Set<() => void>>();
  return {
    /** Tells the watchers of `key` that it was written. */
    notify(key: string): void {
      for (const onChange of byKey.get(key) ?? []) onChange();
    },
    /** Adds a watcher; returns the unsubscribe function. */
    add(key: string, onChange: () => void): () => void {
      let set = byKey.get(key);
      if (!set) {
        set = new Set();
        byKey.set(key, set);
      }
      set.add(onChange);
      return () => {
        set.delete(onChange);
        if (set.size === 0) byKey.delete(key);
      };
    },
  };
}

/**
 * A network store that tells waiters of writes: `set` and a `swap` that wrote announce the key (`announce`,
 * fire and forget), and `watch` opens the push channel (`listen`, once is the caller's business) and
 * registers the waiter with `watchers`, which the channel notifies. `push: false` leaves `watch` out:
 * waiters then poll, as they do on any store without it.
 */
export function withPush(
  base: TokenStore & Required<Pick<TokenStore, 'swap'>>,
  options: {
    announce: (key: string) => void;
    listen: () => void;
    watchers: ReturnType<typeof keyWatchers>;
    push: boolean | undefined;
  },
): TokenStore {
  const { announce, listen, watchers } = options;
  const store: TokenStore = {
    ...base,
    async set(key, value, ttlMs) {
      await base.set(key, value, ttlMs);
      announce(key);
    },
    async swap(key, value, expected, ttlMs) {
      const written = await base.swap(key, value, expected, ttlMs);
      if (written) announce(key);
      return written;
    },
  };
  if (options.push !== false) {
    store.watch = (key, onChange) => {
      listen();
      return watchers.add(key, onChange);
    };
  }
  return store;
}
