/** Shared suites every TokenStore and every Lock must pass. */
import { afterAll, describe, expect, it } from 'vitest';
import type { Lock, TokenStore } from '../../src/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function storeConformance(name: string, make: () => TokenStore | Promise<TokenStore>): void {
  describe(`TokenStore conformance: ${name}`, () => {
    const opened: TokenStore[] = [];
    const open = async () => {
      const store = await make();
      opened.push(store);
      return store;
    };
    afterAll(async () => {
      for (const store of opened) await store.close?.();
    });
    const run = `conformance:${process.pid}:${Date.now()}:${Math.random().toString(36).slice(2)}`;
    const key = (suffix: string) => `${run}:${suffix}`;

    it('reads back what it wrote, as a copy of the same shape', async () => {
      const store = await open();
      const value = { v: 1, accessToken: 'a', generation: 3, nested: { list: [1, 2] } };
      await store.set(key('rw'), value, 60_000);
      expect(await store.get(key('rw'))).toEqual(value);
    });

    it('answers undefined for a key it never saw', async () => {
      const store = await open();
      expect(await store.get(key('missing'))).toBeUndefined();
    });

    it('overwrites and deletes', async () => {
      const store = await open();
      await store.set(key('ow'), { n: 1 }, 60_000);
      await store.set(key('ow'), { n: 2 }, 60_000);
      expect(await store.get(key('ow'))).toEqual({ n: 2 });
      await store.delete(key('ow'));
      expect(await store.get(key('ow'))).toBeUndefined();
    });

    it('forgets an entry after its TTL', async () => {
      const store = await open();
      await store.set(key('ttl'), { n: 1 }, 1000);
      expect(await store.get(key('ttl'))).toEqual({ n: 1 });
      await sleep(1300);
      expect(await store.get(key('ttl'))).toBeUndefined();
    });

    it('keeps keys apart', async () => {
      const store = await open();
      await Promise.all([store.set(key('a'), { who: 'a' }, 60_000), store.set(key('b'), { who: 'b' }, 60_000)]);
      expect(await store.get(key('a'))).toEqual({ who: 'a' });
      expect(await store.get(key('b'))).toEqual({ who: 'b' });
    });
  });
}

export function lockConformance(name: string, make: () => Lock | Promise<Lock>, close?: () => Promise<void>): void {
  describe(`Lock conformance: ${name}`, () => {
    const run = `conformance:${process.pid}:${Date.now()}:${Math.random().toString(36).slice(2)}`;
    const lockKey = (suffix: string) => `${run}:${suffix}`;
    afterAll(async () => {
      await close?.();
    });

    it('lets exactly one holder in at a time under concurrency', async () => {
      const lock = await make();
      const key = lockKey('mutex');
      let inside = 0;
      let most = 0;
      let entered = 0;
      await Promise.all(
        Array.from({ length: 12 }, async () => {
          const handle = await lock.acquire(key, { ttlMs: 5000, waitMs: 10_000 });
          expect(handle).toBeDefined();
          inside++;
          entered++;
          most = Math.max(most, inside);
          await sleep(5);
          inside--;
          await handle!.release();
        }),
      );
      expect(entered).toBe(12);
      expect(most).toBe(1);
    });

    it('gives up after waitMs and says so with undefined', async () => {
      const lock = await make();
      const key = lockKey('wait');
      const holder = await lock.acquire(key, { ttlMs: 5000, waitMs: 1000 });
      const started = Date.now();
      const second = await lock.acquire(key, { ttlMs: 5000, waitMs: 150 });
      expect(second).toBeUndefined();
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect(Date.now() - started).toBeLessThan(1500);
      await holder!.release();
    });

    it('frees a lock whose holder never releases once its TTL passes', async () => {
      const lock = await make();
      const key = lockKey('ttl');
      const stale = await lock.acquire(key, { ttlMs: 300, waitMs: 1000 });
      expect(stale).toBeDefined();
      const started = Date.now();
      const next = await lock.acquire(key, { ttlMs: 5000, waitMs: 3000 });
      expect(next).toBeDefined();
      expect(Date.now() - started).toBeLessThan(1500);
      expect(await stale!.isHeld()).toBe(false);
      expect(await next!.isHeld()).toBe(true);
      // The stale holder's release must not free the new holder's lock.
      await stale!.release();
      expect(await next!.isHeld()).toBe(true);
      expect(await lock.acquire(key, { ttlMs: 5000, waitMs: 100 })).toBeUndefined();
      await next!.release();
      const after = await lock.acquire(key, { ttlMs: 5000, waitMs: 1000 });
      expect(after).toBeDefined();
      await after!.release();
    });

    it('extend keeps a live holder in, and a stale handle cannot extend', async () => {
      const lock = await make();
      const key = lockKey('extend');
      const handle = await lock.acquire(key, { ttlMs: 300, waitMs: 1000 });
      expect(handle?.extend).toBeTypeOf('function');
      await sleep(200);
      expect(await handle!.extend!(2000)).toBe(true);
      await sleep(250);
      expect(await handle!.isHeld()).toBe(true);
      expect(await lock.acquire(key, { ttlMs: 300, waitMs: 100 })).toBeUndefined();
      await handle!.release();
      expect(await handle!.extend!(2000)).toBe(false);
      const short = await lock.acquire(key, { ttlMs: 150, waitMs: 1000 });
      await sleep(250);
      const next = await lock.acquire(key, { ttlMs: 5000, waitMs: 1000 });
      expect(next).toBeDefined();
      expect(await short!.extend!(5000)).toBe(false);
      expect(await next!.isHeld()).toBe(true);
      await next!.release();
    });

    it('reports isHeld false after release', async () => {
      const lock = await make();
      const handle = await lock.acquire(lockKey('held'), { ttlMs: 5000, waitMs: 1000 });
      expect(await handle!.isHeld()).toBe(true);
      await handle!.release();
      expect(await handle!.isHeld()).toBe(false);
    });
  });
}
