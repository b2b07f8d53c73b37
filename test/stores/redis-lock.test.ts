/** The Redis lock as Redis sees it: the key, its owner and TTL, and what a failing server looks like. */
import { createClient } from '@keyv/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, StoreUnavailableError } from '../../src/index.js';
import { type RedisCommander, redisLock } from '../../stores/index.js';
import { needs, REDIS_URL } from '../helpers/services.js';
import { sleep, unique } from './conformance.js';
import { holdInChild } from './holder.js';

const redis = await needs('redis');
const prefix = `${unique('redislock')}:`;

describe.runIf(redis)('redisLock on a real server', () => {
  const client = createClient({ url: REDIS_URL });
  beforeAll(async () => {
    await client.connect();
  });
  afterAll(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(keys);
    await client.close();
  });
  const lock = () => redisLock(client, { prefix });

  it('is one key that names its owner and dies with its TTL; release deletes it', async () => {
    const handle = await lock().acquire('raw', { ttlMs: 3000, waitMs: 0 });
    expect(await client.get(`${prefix}raw`)).toBe(handle!.owner);
    const ttl = await client.pTTL(`${prefix}raw`);
    expect(ttl).toBeGreaterThan(2500);
    expect(ttl).toBeLessThanOrEqual(3000);
    expect(await handle!.extend!(10_000)).toBe(true);
    expect(await client.pTTL(`${prefix}raw`)).toBeGreaterThan(9000);
    await handle!.release();
    expect(await client.exists(`${prefix}raw`)).toBe(0);
  });

  it('a stale holder cannot delete or extend the key of the one who came after it', async () => {
    const stale = await lock().acquire('stale', { ttlMs: 100, waitMs: 0 });
    await sleep(150);
    const next = await lock().acquire('stale', { ttlMs: 5000, waitMs: 0 });
    await stale!.release();
    expect(await stale!.extend!(60_000)).toBe(false);
    expect(await client.get(`${prefix}stale`)).toBe(next!.owner);
    expect(await client.pTTL(`${prefix}stale`)).toBeLessThanOrEqual(5000);
    // Someone else's value under the key (another process) makes isHeld false, even within our TTL.
    await client.set(`${prefix}stale`, 'another-owner', { PX: 5000 });
    expect(await next!.isHeld()).toBe(false);
  });

  it('a SET that lands after its deadline is taken back instead of left for a whole TTL', async () => {
    const slow: RedisCommander = {
      async sendCommand(args) {
        const reply = await client.sendCommand(args);
        if (args[0] === 'SET') await sleep(200);
        return reply;
      },
    };
    const error = await redisLock(slow, { prefix, commandTimeoutMs: 50 })
      .acquire('late', { ttlMs: 30_000, waitMs: 0 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toBe('redis lock acquire timed out after 50 ms');
    await sleep(50);
    expect(await client.exists(`${prefix}late`)).toBe(0);
  });

  it('a holder process that hangs (SIGSTOP) loses the lock at its TTL', async () => {
    const ttlMs = 600;
    const holder = await holdInChild({ kind: 'redis', url: REDIS_URL, name: 'paused', ttlMs, prefix });
    const held = Date.now();
    holder.child.kill('SIGSTOP');
    try {
      const next = await lock().acquire('paused', { ttlMs: 5000, waitMs: 5000 });
      expect(next).toBeDefined();
      expect(Date.now() - held).toBeLessThan(ttlMs + 500);
      await next!.release();
    } finally {
      await holder.kill();
    }
  });
});

describe('redisLock when Redis fails', () => {
  it('maps a failing command to StoreUnavailableError naming the operation, with the cause', async () => {
    const cause = new Error('READONLY You cannot write against a read only replica');
    const failing: RedisCommander = { sendCommand: async () => Promise.reject(cause) };
    const error = await redisLock(failing)
      .acquire('k', { ttlMs: 1000, waitMs: 0 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toBe('redis lock acquire failed');
    expect((error as Error).cause).toBe(cause);
  });

  it('bounds a command that never answers, and a handle whose server is gone is not held and releases quietly', async () => {
    let hang = false;
    const flaky: RedisCommander = {
      sendCommand: (args) => (hang ? new Promise(() => {}) : Promise.resolve(args[0] === 'SET' ? 'OK' : null)),
    };
    const handle = await redisLock(flaky, { commandTimeoutMs: 100 }).acquire('k', { ttlMs: 5000, waitMs: 0 });
    hang = true;
    const started = Date.now();
    expect(await handle!.isHeld()).toBe(false);
    expect(await handle!.extend!(5000)).toBe(false);
    await expect(handle!.release()).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(600);
    const error = await redisLock(flaky, { commandTimeoutMs: 100 })
      .acquire('k', { ttlMs: 5000, waitMs: 1000 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StoreUnavailableError);
  });

  it('rejects options that make no sense', async () => {
    const ok: RedisCommander = { sendCommand: async () => 'OK' };
    expect(() => redisLock({} as RedisCommander)).toThrow(ConfigError);
    expect(() => redisLock(ok, { poll: [50, 10] })).toThrow(ConfigError);
    await expect(redisLock(ok).acquire('k', { ttlMs: 0, waitMs: 0 })).rejects.toThrow(ConfigError);
    await expect(redisLock(ok).acquire('k', { ttlMs: 10, waitMs: -1 })).rejects.toThrow(ConfigError);
  });
});
