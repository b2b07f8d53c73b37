/** The in-process lock on a fake clock: queue order, hand-over at release and at expiry, give-ups. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, type LockHandle } from '../../src/index.js';
import { memoryLock } from '../../stores/index.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Records when (on the fake clock) and in which order waiters got the lock. */
function recorder() {
  const order: string[] = [];
  const at: Record<string, number> = {};
  const start = Date.now();
  const track = (name: string, pending: Promise<LockHandle | undefined>) =>
    pending.then((handle) => {
      order.push(handle ? name : `${name}:gave-up`);
      at[name] = Date.now() - start;
      return handle;
    });
  return { order, at, track };
}

describe('memoryLock', () => {
  it('serves waiters first come, first served, each the moment the one before releases', async () => {
    const lock = memoryLock();
    const { order, track } = recorder();
    const first = await lock.acquire('k', { ttlMs: 10_000, waitMs: 0 });
    const waiting = ['a', 'b', 'c'].map((name) => track(name, lock.acquire('k', { ttlMs: 10_000, waitMs: 60_000 })));
    let current = first;
    for (const pending of waiting) {
      void current!.release();
      // Handed over on release: a newcomer arriving right after it cannot jump the queue.
      expect(await lock.acquire('k', { ttlMs: 1000, waitMs: 0 })).toBeUndefined();
      current = await pending;
    }
    await current!.release();
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('hands the lock to the next waiter when the holder’s TTL runs out, without polling', async () => {
    const lock = memoryLock();
    const { at, track } = recorder();
    await lock.acquire('k', { ttlMs: 1000, waitMs: 0 });
    const next = track('next', lock.acquire('k', { ttlMs: 1000, waitMs: 60_000 }));
    await vi.advanceTimersByTimeAsync(999);
    expect(at.next).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(await next).toBeDefined();
    expect(at.next).toBe(1000);
  });

  it('extend moves the hand-over to the new expiry; a waiter that gave up never gets the lock', async () => {
    const lock = memoryLock();
    const { order, at, track } = recorder();
    const holder = await lock.acquire('k', { ttlMs: 1000, waitMs: 0 });
    const impatient = track('impatient', lock.acquire('k', { ttlMs: 1000, waitMs: 500 }));
    const patient = track('patient', lock.acquire('k', { ttlMs: 1000, waitMs: 60_000 }));
    await vi.advanceTimersByTimeAsync(800);
    expect(await holder!.extend!(2000)).toBe(true);
    await vi.advanceTimersByTimeAsync(2000);
    expect(await impatient).toBeUndefined();
    expect(await patient).toBeDefined();
    expect(order).toEqual(['impatient:gave-up', 'patient']);
    expect(at).toEqual({ impatient: 500, patient: 2800 });
    expect(await holder!.isHeld()).toBe(false);
  });

  it('an aborted waiter leaves the queue at once and the next one is served', async () => {
    const lock = memoryLock();
    const { order, track } = recorder();
    const holder = await lock.acquire('k', { ttlMs: 10_000, waitMs: 0 });
    const controller = new AbortController();
    const aborted = track('aborted', lock.acquire('k', { ttlMs: 1000, waitMs: 60_000, signal: controller.signal }));
    const next = track('next', lock.acquire('k', { ttlMs: 1000, waitMs: 60_000 }));
    controller.abort();
    expect(await aborted).toBeUndefined();
    await holder!.release();
    expect(await next).toBeDefined();
    expect(order).toEqual(['aborted:gave-up', 'next']);
    expect(await lock.acquire('j', { ttlMs: 1000, waitMs: 1000, signal: AbortSignal.abort() })).toBeDefined();
  });

  it('an expired holder cannot release or extend the lock of the one after it', async () => {
    const lock = memoryLock();
    const stale = await lock.acquire('k', { ttlMs: 100, waitMs: 0 });
    await vi.advanceTimersByTimeAsync(100);
    const next = await lock.acquire('k', { ttlMs: 1000, waitMs: 0 });
    expect(next).toBeDefined();
    await stale!.release();
    expect(await stale!.extend!(10_000)).toBe(false);
    expect(await next!.isHeld()).toBe(true);
    expect(await lock.acquire('k', { ttlMs: 1000, waitMs: 0 })).toBeUndefined();
  });

  it('forgets keys nobody holds or waits for', async () => {
    const lock = memoryLock();
    for (let i = 0; i < 1000; i++) {
      const handle = await lock.acquire(`key-${i}`, { ttlMs: 1000, waitMs: 0 });
      await handle!.release();
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects a TTL below 1 ms and a negative wait', async () => {
    const lock = memoryLock();
    await expect(lock.acquire('k', { ttlMs: 0, waitMs: 0 })).rejects.toThrow(ConfigError);
    await expect(lock.acquire('k', { ttlMs: 10, waitMs: -5 })).rejects.toThrow(ConfigError);
  });
});
