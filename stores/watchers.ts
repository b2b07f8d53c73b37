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
