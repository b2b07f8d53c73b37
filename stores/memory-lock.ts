import { randomUUID } from 'node:crypto';
import type { AcquireOptions, Lock, LockHandle } from '../src/store.js';
import { checkAcquire, clampTimer } from './timeout.js';

interface Holder {
  readonly owner: string;
  expiresAt: number;
  timer?: NodeJS.Timeout;
}

interface Waiter {
  readonly ttlMs: number;
  grant(handle: LockHandle): void;
}

interface KeyState {
  holder?: Holder | undefined;
  readonly queue: Waiter[];
}

/**
 * The default lock: mutual exclusion within this process, with the same TTL and owner rules as the
 * shared ones. Waiters queue first come, first served and are handed the lock the moment it is
 * released or its holder's TTL runs out: no polling, no timer left behind for a key nobody uses.
 */
export function memoryLock(): Lock {
  const keys = new Map<string, KeyState>();

  function handOver(key: string, state: KeyState): void {
    state.holder = undefined;
    const next = state.queue.shift();
    if (next) next.grant(take(key, state, next.ttlMs));
    else if (keys.get(key) === state) keys.delete(key);
  }

  function arm(key: string, state: KeyState, holder: Holder): void {
    clearTimeout(holder.timer);
    holder.timer = setTimeout(
      function expire() {
        if (state.holder !== holder) return;
        // Timers may fire a little early: wait for the real expiry.
        if (Date.now() < holder.expiresAt) arm(key, state, holder);
        else handOver(key, state);
      },
      clampTimer(holder.expiresAt - Date.now()),
    );
  }

  function take(key: string, state: KeyState, ttlMs: number): LockHandle {
    const holder: Holder = { owner: randomUUID(), expiresAt: Date.now() + ttlMs };
    state.holder = holder;
    arm(key, state, holder);
    const mine = () => state.holder === holder && Date.now() < holder.expiresAt;
    return {
      key,
      owner: holder.owner,
      isHeld: async () => mine(),
      async extend(ms: number) {
        if (!mine()) return false;
        holder.expiresAt = Date.now() + ms;
        arm(key, state, holder);
        return true;
      },
      async release() {
        if (state.holder !== holder) return;
        clearTimeout(holder.timer);
        handOver(key, state);
      },
    };
  }

  return {
    shared: false,
    async acquire(key: string, options: AcquireOptions) {
      checkAcquire('memoryLock', options);
      const { ttlMs, waitMs, signal } = options;
      let state = keys.get(key);
      if (state?.holder && Date.now() >= state.holder.expiresAt) {
        clearTimeout(state.holder.timer);
        handOver(key, state);
        state = keys.get(key);
      }
      if (!state) {
        state = { queue: [] };
        keys.set(key, state);
      }
      if (!state.holder) return take(key, state, ttlMs);
      if (waitMs <= 0 || signal?.aborted) return undefined;
      const queue = state.queue;
      return new Promise<LockHandle | undefined>((resolve) => {
        const done = (handle: LockHandle | undefined) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', giveUp);
          resolve(handle);
        };
        const waiter: Waiter = { ttlMs, grant: done };
        function giveUp() {
          const at = queue.indexOf(waiter);
          if (at !== -1) queue.splice(at, 1);
          done(undefined);
        }
        const timer = setTimeout(giveUp, clampTimer(waitMs));

        signal?.addEventListener('abort', giveUp, { once: true });
        queue.push(waiter);
      });
    },
  };
}
