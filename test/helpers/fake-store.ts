import type { Lock, TokenStore } from '../../src/index.js';

/** A Map-backed TokenStore that counts its calls and can be told to fail. */
export function fakeStore(shared = false) {
  const map = new Map<string, unknown>();
  const calls = { get: 0, set: 0 };
  let failure: Error | undefined;
  const store: TokenStore = {
    shared,
    async get(key) {
      calls.get++;
      if (failure) throw failure;
      return structuredClone(map.get(key));
    },
    async set(key, value) {
      calls.set++;
      if (failure) throw failure;
      map.set(key, structuredClone(value));
    },
    async delete(key) {
      map.delete(key);
    },
  };
  return {
    store,
    map,
    calls,
    fail(error: Error | undefined) {
      failure = error;
    },
  };
}

/** A lock that serializes holders in this process. */
export function fakeLock(shared = false): Lock {
  let tail = Promise.resolve();
  return {
    shared,
    async acquire(key) {
      let release!: () => void;
      const previous = tail;
      tail = new Promise<void>((resolve) => {
        release = resolve;
      });
      await previous;
      let held = true;
      return {
        key,
        owner: 'fake',
        isHeld: async () => held,
        release: async () => {
          held = false;
          release();
        },
      };
    },
  };
}
