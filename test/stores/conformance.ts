/** Shared suites every TokenStore and every Lock must pass (keyv's adapter test suite is the model). */
import { afterAll, describe, expect, it } from 'vitest';
import type { Lock, TokenStore } from '../../src/index.js';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Unique per suite run, so that parallel test files and repeated runs never share a key. */
export const unique = (label: string) =>
  `${label}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * `make(namespace)` opens a store; two stores opened with one namespace must see the same entries, and
 * with different namespaces none of each other's.
 */
export function storeConformance(name: string, make: (namespace: string) => TokenStore | Promise<TokenStore>): void {
  describe(`TokenStore conformance: ${name}`, () => {
    const namespace = unique('conformance');
    const written: [TokenStore, string][] = [];
    const opened: TokenStore[] = [];
    const open = async (ns = namespace) => {
      const store = await make(ns);
      opened.push(store);
      return store;
    };
    const set = async (store: TokenStore, key: string, value: unknown, ttlMs = 60_000) => {
      written.push([store, key]);
      await store.set(key, value, ttlMs);
    };
    afterAll(async () => {
      for (const [store, key] of written) await store.delete(key).catch(() => {});
      for (const store of opened) await store.close?.();
    });

    it('reads back what it wrote, as a copy of the same shape', async () => {
      const store = await open();
      const value = { v: 1, accessToken: 'at_é✓', refreshToken: ':base64:AAAA', generation: 3, list: [1, null] };
      await set(store, 'rw', value);
      const read = await store.get('rw');
      expect(read).toEqual(value);
      expect(read).not.toBe(value);
    });

    it('answers undefined for a key it never saw, and deleting one is not an error', async () => {
      const store = await open();
      expect(await store.get('missing')).toBeUndefined();
      await expect(store.delete('missing')).resolves.toBeUndefined();
    });

    it('overwrites and deletes', async () => {
      const store = await open();
      await set(store, 'ow', { n: 1 });
      await set(store, 'ow', { n: 2 });
      expect(await store.get('ow')).toEqual({ n: 2 });
      await store.delete('ow');
      expect(await store.get('ow')).toBeUndefined();
    });

    it('keeps an entry for its TTL and forgets it after', async () => {
      const store = await open();
      await set(store, 'ttl', { n: 1 }, 400);
      await set(store, 'long', { n: 2 });
      expect(await store.get('ttl')).toEqual({ n: 1 });
      await sleep(600);
      expect(await store.get('ttl')).toBeUndefined();
      expect(await store.get('long')).toEqual({ n: 2 });
    });

    it('keeps keys apart', async () => {
      const store = await open();
      await Promise.all([set(store, 'a', { who: 'a' }), set(store, 'b', { who: 'b' })]);
      expect(await store.get('a')).toEqual({ who: 'a' });
      expect(await store.get('b')).toEqual({ who: 'b' });
    });

    it('shares entries within a namespace and isolates namespaces', async () => {
      const [one, same, other] = [await open(), await open(), await open(`${namespace}-other`)];
      await set(one, 'ns', { from: 'one' });
      expect(await same.get('ns')).toEqual({ from: 'one' });
      expect(await other.get('ns')).toBeUndefined();
      await set(other, 'ns', { from: 'other' });
      expect(await one.get('ns')).toEqual({ from: 'one' });
      await other.delete('ns');
      expect(await one.get('ns')).toEqual({ from: 'one' });
    });

    it('swap writes only over the revision it expects, and a corrupt or missing entry counts as none', async () => {
      const [one, two] = [await open(), await open()];
      if (!one.swap) throw new Error(`${name} has no swap: every store Sluice ships must fence its writes`);
      written.push([one, 'cas']);
      expect(await one.swap('cas', { revision: 1, who: 'one' }, 5, 60_000)).toBe(false);
      expect(await one.get('cas')).toBeUndefined();
      expect(await one.swap('cas', { revision: 1, who: 'one' }, undefined, 60_000)).toBe(true);
      // Two writers that both read revision 1: exactly one wins, whichever connection it uses.
      const race = await Promise.all([
        one.swap('cas', { revision: 2, who: 'one' }, 1, 60_000),
        two.swap!('cas', { revision: 2, who: 'two' }, 1, 60_000),
      ]);
      expect(race.filter(Boolean)).toHaveLength(1);
      const winner = race[0] ? 'one' : 'two';
      expect(await two.get('cas')).toEqual({ revision: 2, who: winner });
      // A stale writer (it read revision 1) cannot overwrite revision 2, and none can write "no entry" over it.
      expect(await two.swap!('cas', { revision: 3, who: 'stale' }, 1, 60_000)).toBe(false);
      expect(await two.swap!('cas', { revision: 3, who: 'stale' }, undefined, 60_000)).toBe(false);
      await set(one, 'cas', { not: 'an entry' });
      expect(await one.swap('cas', { revision: 4, who: 'fixer' }, undefined, 60_000)).toBe(true);
      expect(await one.get('cas')).toEqual({ revision: 4, who: 'fixer' });
      // Many concurrent writers from one revision: one winner, never a lost update.
      const many = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).swap!('cas', { revision: 5, who: i }, 4, 60_000)),
      );
      expect(many.filter(Boolean)).toHaveLength(1);
    });
  });
}

export function lockConformance(name: string, make: () => Lock | Promise<Lock>, close?: () => Promise<void>): void {
  describe(`Lock conformance: ${name}`, () => {
    const run = unique('conformance');
    const lockKey = (suffix: string) => `${run}:${suffix}`;
    afterAll(async () => {
      await close?.();
    });

    it('lets exactly one holder in at a time under concurrency', async () => {
      const lock = await make();
      const key = lockKey('mutex');
      let inside = 0;
      let most = 0;
      const owners = new Set<string>();
      await Promise.all(
        Array.from({ length: 12 }, async () => {
          const handle = await lock.acquire(key, { ttlMs: 5000, waitMs: 10_000 });
          if (!handle) throw new Error('an acquirer gave up');
          inside++;
          most = Math.max(most, inside);
          owners.add(handle.owner);
          await sleep(5);
          inside--;
          await handle.release();
        }),
      );
      expect(owners.size).toBe(12);
      expect(most).toBe(1);
    });

    it('gives up after waitMs and says so with undefined; waitMs 0 tries once', async () => {
      const lock = await make();
      const key = lockKey('wait');
      const holder = await lock.acquire(key, { ttlMs: 5000, waitMs: 0 });
      expect(holder).toBeDefined();
      let started = Date.now();
      expect(await lock.acquire(key, { ttlMs: 5000, waitMs: 150 })).toBeUndefined();
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect(Date.now() - started).toBeLessThan(1000);
      started = Date.now();
      expect(await lock.acquire(key, { ttlMs: 5000, waitMs: 0 })).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(500);
      await holder!.release();
    });

    it('hands over soon after a release, long before the TTL', async () => {
      const lock = await make();
      const key = lockKey('handover');
      const holder = await lock.acquire(key, { ttlMs: 10_000, waitMs: 0 });
      const waiting = lock.acquire(key, { ttlMs: 5000, waitMs: 5000 });
      await sleep(100);
      const released = Date.now();
      await holder!.release();
      const next = await waiting;
      expect(next).toBeDefined();
      expect(Date.now() - released).toBeLessThan(500);
      await next!.release();
    });

    it('frees a lock whose holder never releases once its TTL passes; the stale handle cannot free it', async () => {
      const lock = await make();
      const key = lockKey('ttl');
      const stale = await lock.acquire(key, { ttlMs: 300, waitMs: 0 });
      expect(stale).toBeDefined();
      const started = Date.now();
      const next = await lock.acquire(key, { ttlMs: 5000, waitMs: 3000 });
      expect(next).toBeDefined();
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(await stale!.isHeld()).toBe(false);
      expect(await next!.isHeld()).toBe(true);
      await stale!.release();
      expect(await next!.isHeld()).toBe(true);
      expect(await lock.acquire(key, { ttlMs: 5000, waitMs: 50 })).toBeUndefined();
      await next!.release();
      const after = await lock.acquire(key, { ttlMs: 5000, waitMs: 0 });
      expect(after).toBeDefined();
      await after!.release();
    });

    it('extend keeps a live holder in, and a stale handle cannot extend', async () => {
      const lock = await make();
      const key = lockKey('extend');
      const handle = await lock.acquire(key, { ttlMs: 300, waitMs: 0 });
      expect(handle?.extend).toBeTypeOf('function');
      await sleep(200);
      expect(await handle!.extend!(2000)).toBe(true);
      await sleep(250);
      expect(await handle!.isHeld()).toBe(true);
      expect(await lock.acquire(key, { ttlMs: 300, waitMs: 50 })).toBeUndefined();
      await handle!.release();
      expect(await handle!.extend!(2000)).toBe(false);
      const short = await lock.acquire(key, { ttlMs: 150, waitMs: 0 });
      await sleep(250);
      const next = await lock.acquire(key, { ttlMs: 5000, waitMs: 1000 });
      expect(next).toBeDefined();
      expect(await short!.extend!(5000)).toBe(false);
      expect(await next!.isHeld()).toBe(true);
      await next!.release();
    });

    it('reports isHeld false after release; releasing twice is harmless', async () => {
      const lock = await make();
      const handle = await lock.acquire(lockKey('held'), { ttlMs: 5000, waitMs: 0 });
      expect(await handle!.isHeld()).toBe(true);
      await handle!.release();
      expect(await handle!.isHeld()).toBe(false);
      await expect(handle!.release()).resolves.toBeUndefined();
    });

    it('keeps keys apart, and an abort ends a wait early', async () => {
      const lock = await make();
      const [a, b] = [lockKey('apart-a'), lockKey('apart-b')];
      const first = await lock.acquire(a, { ttlMs: 5000, waitMs: 0 });
      const second = await lock.acquire(b, { ttlMs: 5000, waitMs: 0 });
      expect(first && second).toBeDefined();
      const started = Date.now();
      const aborted = lock.acquire(a, { ttlMs: 5000, waitMs: 5000, signal: AbortSignal.timeout(100) });
      expect(await aborted).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(1000);
      await Promise.all([first!.release(), second!.release()]);
    });
  });
}
