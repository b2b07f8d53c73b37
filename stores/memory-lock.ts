import { randomUUID } from 'node:crypto';
import type { AcquireOptions, Lock, LockHandle } from '../src/store.js';
import { sleep } from './timeout.js';

/** The default lock: mutual exclusion within this process, with the same TTL and owner rules as the shared ones. */
export function memoryLock(): Lock {
  const held = new Map<string, { owner: string; expiresAt: number }>();
  const waiters = new Map<string, Set<() => void>>();

  const wake = (key: string) => {
    const set = waiters.get(key);
    if (set) for (const resolve of set) resolve();
  };

  const tryTake = (key: string, ttlMs: number): LockHandle | undefined => {
    const current = held.get(key);
    if (current && current.expiresAt > Date.now()) return undefined;
    const owner = randomUUID();
    const entry = { owner, expiresAt: Date.now() + ttlMs };
    held.set(key, entry);
    const mine = () => held.get(key) === entry && Date.now() < entry.expiresAt;
    return {
      key,
      owner,
      isHeld: async () => mine(),
      extend: async (ms: number) => {
        if (!mine()) return false;
        entry.expiresAt = Date.now() + ms;
        return true;
      },
      release: async () => {
        if (held.get(key)?.owner !== owner) return;
        held.delete(key);
        wake(key);
      },
    };
  };

  return {
    shared: false,
    async acquire(key: string, { ttlMs, waitMs, signal }: AcquireOptions) {
      const giveUpAt = Date.now() + waitMs;
      for (;;) {
        const handle = tryTake(key, ttlMs);
        if (handle) return handle;
        const remaining = giveUpAt - Date.now();
        if (remaining <= 0 || signal?.aborted) return undefined;
        // Wake on release, on the holder's expiry, or when our wait is over, whichever comes first.
        const expiry = (held.get(key)?.expiresAt ?? Date.now()) - Date.now();
        let wakeUp!: () => void;
        const released = new Promise<void>((resolve) => {
          wakeUp = resolve;
        });
        const set = waiters.get(key) ?? new Set();
        waiters.set(key, set);
        set.add(wakeUp);
        await Promise.race([released, sleep(Math.max(1, Math.min(remaining, expiry + 1)))]);
        set.delete(wakeUp);
        if (set.size === 0) waiters.delete(key);
      }
    },
  };
}
