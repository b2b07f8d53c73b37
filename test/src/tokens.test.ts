import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AbortError, AuthError, customGrant, type Grant, NetworkError, type SluiceEvent } from '../../src/index.js';
import { TokenManager, type TokenManagerOptions, tokenKey } from '../../src/internals.js';
import { fakeLock, fakeStore } from '../helpers/fake-store.js';

const unusedFetch = () => Promise.reject(new Error('no network in this test'));

function setup(grant: Grant, options: Partial<TokenManagerOptions> = {}) {
  let now = 1_000_000;
  const events: SluiceEvent[] = [];
  const storage = fakeStore();
  const manager = new TokenManager({
    grant,
    store: storage.store,
    lock: fakeLock(),
    fetch: unusedFetch,
    events: () => (event) => events.push(event),
    now: () => now,
    random: () => 0.5,
    ...options,
  });
  return {
    manager,
    storage,
    events,
    advance(ms: number) {
      now += ms;
    },
    get now() {
      return now;
    },
  };
}

function counting(lifetimeSeconds = 3600, extra: Partial<Grant> = {}) {
  let calls = 0;
  let fail: Error | undefined;
  let gate: Promise<void> | undefined;
  const grant = customGrant({
    id: 'test',
    async obtain() {
      calls++;
      if (gate) await gate;
      if (fail) throw fail;
      return { accessToken: `token-${calls}`, expiresIn: lifetimeSeconds };
    },
  });
  return {
    grant: { ...grant, ...extra } as Grant,
    get calls() {
      return calls;
    },
    failWith(error: Error | undefined) {
      fail = error;
    },
    hold() {
      let open!: () => void;
      gate = new Promise((resolve) => {
        open = resolve;
      });
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

describe('TokenManager', () => {
  it('single flight: 50 concurrent callers make one obtain', async () => {
    const source = counting();
    const { manager } = setup(source.grant);
    const tokens = await Promise.all(Array.from({ length: 50 }, () => manager.token()));
    expect(source.calls).toBe(1);
    expect(new Set(tokens.map((token) => token.accessToken))).toEqual(new Set(['token-1']));
    expect(tokens[0]!.generation).toBe(1);
  });

  it("a caller's abort rejects that caller only; the shared refresh goes on", async () => {
    const source = counting();
    const { manager } = setup(source.grant);
    const open = source.hold();
    const controller = new AbortController();
    const aborted = manager.token({ signal: controller.signal });
    const patient = manager.token();
    controller.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
    open();
    await expect(patient).resolves.toMatchObject({ accessToken: 'token-1' });
    expect(source.calls).toBe(1);
  });

  it('a failed refresh reaches every waiter as one AuthError and poisons nothing', async () => {
    const source = counting();
    const { manager, events } = setup(source.grant);
    source.failWith(new AuthError('nope', { oauthError: 'invalid_client' }));
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => manager.token()));
    expect(results.every((result) => result.status === 'rejected')).toBe(true);
    // Each waiter gets its own error (its own stack and call), all caused by the one failure.
    const reasons = results.map((result) => (result as PromiseRejectedResult).reason as AuthError);
    expect(new Set(reasons).size).toBe(5);
    expect(new Set(reasons.map((reason) => reason.cause)).size).toBe(1);
    for (const reason of reasons) expect(reason).toMatchObject({ name: 'AuthError', code: 'AUTH_INVALID_CLIENT' });
    expect(source.calls).toBe(1);
    expect(events.some((event) => event.type === 'token' && event.action === 'failed')).toBe(true);
    source.failWith(undefined);
    await expect(manager.token()).resolves.toMatchObject({ accessToken: 'token-2' });
  });

  it('refreshes in the background inside the skew window, returning the current token meanwhile', async () => {
    const source = counting(600);
    const clock = setup(source.grant, { skew: 60_000, jitter: 30_000 });
    const first = await clock.manager.token();
    clock.advance(600_000 - 70_000); // 70 s before expiry: inside the 60 s + 0.5 x 30 s window
    const open = source.hold();
    const during = await clock.manager.token();
    expect(during.accessToken).toBe(first.accessToken);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(source.calls).toBe(2);
    // While the refresh is held, callers still get the current token and start no second refresh.
    expect((await clock.manager.token()).accessToken).toBe(first.accessToken);
    expect(source.calls).toBe(2);
    open();
    await new Promise((resolve) => setTimeout(resolve, 0));
    const after = await clock.manager.token();
    expect(after.accessToken).toBe('token-2');
    expect(after.generation).toBe(2);
  });

  it('outside the window the hot path touches nothing', async () => {
    const source = counting(600);
    const clock = setup(source.grant);
    await clock.manager.token();
    const reads = clock.manager.storeReads;
    for (let i = 0; i < 1000; i++) expect(clock.manager.current()).toBeDefined();
    expect(clock.manager.storeReads).toBe(reads);
    expect(source.calls).toBe(1);
  });

  it('an expired token is not returned; the next call waits for a new one', async () => {
    const source = counting(60);
    const clock = setup(source.grant);
    await clock.manager.token();
    clock.advance(61_000);
    expect(clock.manager.current()).toBeUndefined();
    await expect(clock.manager.token()).resolves.toMatchObject({ accessToken: 'token-2' });
  });

  it('generation rule: a rejection of an older generation does not refresh', async () => {
    const source = counting();
    const { manager } = setup(source.grant);
    await manager.token();
    const second = await manager.rejected(1);
    expect(second.generation).toBe(2);
    const again = await manager.rejected(1);
    expect(again.generation).toBe(2);
    expect(source.calls).toBe(2);
  });

  it('invalidate() forgets the token; onTokenChange hears of each new one', async () => {
    const source = counting();
    const { manager, events } = setup(source.grant);
    const seen: number[] = [];
    const off = manager.onTokenChange((tokens) => seen.push(tokens.generation));
    await manager.token();
    manager.invalidate();
    expect(manager.current()).toBeUndefined();
    await manager.token();
    off();
    manager.invalidate();
    await manager.token();
    expect(seen).toEqual([1, 2]);
    expect(source.calls).toBe(3);
    expect(events.filter((event) => event.type === 'token' && event.action === 'invalidated')).toHaveLength(2);
  });

  it('adopts a stored token instead of asking for one, and ignores a corrupt entry', async () => {
    const source = counting();
    const first = setup(source.grant);
    await first.manager.token();
    const stored = first.storage.map.get(first.manager.key);
    expect(stored).toMatchObject({ v: 1, generation: 1 });
    const second = setup(source.grant, { store: first.storage.store });
    await expect(second.manager.token()).resolves.toMatchObject({ accessToken: 'token-1' });
    expect(source.calls).toBe(1);
    first.storage.map.set(first.manager.key, { v: 1, accessToken: 'bad\u0000token', expiresAt: 'soon', generation: 1 });
    const third = setup(source.grant, { store: first.storage.store });
    await expect(third.manager.token()).resolves.toMatchObject({ accessToken: 'token-2' });
    expect(third.events.some((event) => event.type === 'token' && event.action === 'store-entry-ignored')).toBe(true);
    expect(first.storage.map.get(first.manager.key)).toMatchObject({ v: 1, accessToken: 'token-2' });
  });

  it('keys are hashed identities: no secret, different per scope and tenant', () => {
    const key = (identity: Record<string, string>) =>
      tokenKey({ identity, canReauthenticate: true, obtain: async () => ({ accessToken: 'x' }) });
    const a = key({ tokenURL: 'https://auth/x', clientId: 'c', scope: 'a' });
    expect(a).toMatch(/^sluice:token:[\w-]{32}$/);
    expect(key({ tokenURL: 'https://auth/x', clientId: 'c', scope: 'b' })).not.toBe(a);
    expect(key({ tokenURL: 'https://auth/x', clientId: 'c', scope: 'a', tenant: 't' })).not.toBe(a);
    expect(key({ clientId: 'c', scope: 'a', tokenURL: 'https://auth/x' })).toBe(a);
  });

  it('token sets hide their secrets from JSON and inspection', async () => {
    const { manager } = setup(
      customGrant({
        id: 'x',
        obtain: async () => ({ accessToken: 'access-secret', refreshToken: 'refresh-secret', expiresIn: 60 }),
      }),
    );
    const tokens = await manager.token();
    expect(tokens.accessToken).toBe('access-secret');
    const shown = `${JSON.stringify(tokens)} ${inspect(tokens)} ${String(JSON.stringify({ tokens }))}`;
    expect(shown).not.toContain('access-secret');
    expect(shown).not.toContain('refresh-secret');
    expect(shown).toContain('[REDACTED]');
  });

  it('an expires_in of 30 days is fine: one token request across many calls', async () => {
    const source = counting(30 * 24 * 3600);
    const clock = setup(source.grant);
    for (let i = 0; i < 100; i++) {
      await clock.manager.token();
      clock.advance(60_000);
    }
    expect(source.calls).toBe(1);
  });

  it('a refresh that got no answer never re-sends the refresh token: it re-authenticates', async () => {
    let refreshes = 0;
    let obtains = 0;
    const grant: Grant = {
      identity: { id: 'rt' },
      canReauthenticate: true,
      obtain: async () => ({ accessToken: `primary-${++obtains}`, refreshToken: 'rt-1', expiresIn: 60 }),
      refresh: async () => {
        refreshes++;
        throw new NetworkError('reset', { code: 'ECONNRESET', retryable: true });
      },
    };
    const clock = setup(grant);
    await clock.manager.token();
    clock.advance(61_000);
    await expect(clock.manager.token()).resolves.toMatchObject({ accessToken: 'primary-2' });
    expect(refreshes).toBe(1);
  });

  it('retryLostRefresh: a server with a reuse grace window gets the same refresh token exactly once more', async () => {
    const presented: string[] = [];
    const grant: Grant = {
      identity: { id: 'grace' },
      canReauthenticate: false,
      obtain: async () => ({ accessToken: 'seeded', refreshToken: 'rt-1', expiresIn: 60 }),
      refresh: async (_context, tokens) => {
        presented.push(tokens.refreshToken as string);
        if (presented.length === 1) throw new NetworkError('reset', { code: 'ECONNRESET', retryable: true });
        return { accessToken: 'after-grace', refreshToken: 'rt-2', expiresIn: 60 };
      },
    };
    const withGrace = setup(grant, { retryLostRefresh: true });
    await withGrace.manager.token();
    withGrace.advance(61_000);
    await expect(withGrace.manager.token()).resolves.toMatchObject({ accessToken: 'after-grace' });
    expect(presented).toEqual(['rt-1', 'rt-1']);
    // Off by default: the lost answer ends it, the token is not presented again.
    presented.length = 0;
    const strict = setup(grant);
    await strict.manager.token();
    strict.advance(61_000);
    await expect(strict.manager.token()).rejects.toMatchObject({ code: 'AUTH_REFRESH_TOKEN_LOST' });
    expect(presented).toEqual(['rt-1']);
  });

  it('...and without a primary grant, says re-authentication is needed', async () => {
    const grant: Grant = {
      identity: { id: 'rt-only' },
      canReauthenticate: false,
      obtain: async () => ({ accessToken: 'seeded', refreshToken: 'rt-1', expiresIn: 60 }),
      refresh: async () => {
        throw new NetworkError('reset', { code: 'ECONNRESET', retryable: true });
      },
    };
    let refreshes = 0;
    grant.refresh = async () => {
      refreshes++;
      throw new NetworkError('reset', { code: 'ECONNRESET', retryable: true });
    };
    const clock = setup(grant);
    await clock.manager.token();
    clock.advance(61_000);
    const error = await clock.manager.token().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).code).toBe('AUTH_REFRESH_TOKEN_LOST');
    // The next call, in this process or any other, does not present the lost refresh token again.
    const again = await clock.manager.token().catch((caught: unknown) => caught);
    expect((again as AuthError).code).toBe('AUTH_REFRESH_TOKEN_LOST');
    expect(refreshes).toBe(1);
  });

  it('invalid_grant on refresh re-reads the store before giving up', async () => {
    const storage = fakeStore();
    let rotatedElsewhere = false;
    const grant: Grant = {
      identity: { id: 'rotating' },
      canReauthenticate: false,
      obtain: async () => ({ accessToken: 'seeded', refreshToken: 'rt-1', expiresIn: 60 }),
      refresh: async () => {
        // Another process rotated the token a moment ago and wrote generation 5.
        rotatedElsewhere = true;
        const key = tokenKey(grant);
        storage.map.set(key, {
          v: 1,
          accessToken: 'from-elsewhere',
          tokenType: 'Bearer',
          expiresAt: clock.now + 60_000,
          refreshToken: 'rt-2',
          generation: 5,
        });
        throw new AuthError('reused', { oauthError: 'invalid_grant', status: 400 });
      },
    };
    const clock = setup(grant, { store: storage.store });
    await clock.manager.token();
    clock.advance(61_000);
    await expect(clock.manager.token()).resolves.toMatchObject({ accessToken: 'from-elsewhere', generation: 5 });
    expect(rotatedElsewhere).toBe(true);
  });

  it('a rotated refresh token replaces the old; a missing one keeps the old', async () => {
    let call = 0;
    const grant: Grant = {
      identity: { id: 'rotation' },
      canReauthenticate: true,
      obtain: async () => ({ accessToken: 'a0', refreshToken: 'rt-0', expiresIn: 60 }),
      refresh: async (_, tokens) => {
        call++;
        return call === 1
          ? { accessToken: `a-${tokens.refreshToken}`, refreshToken: 'rt-1', expiresIn: 60 }
          : { accessToken: `a-${tokens.refreshToken}`, expiresIn: 60 };
      },
    };
    const clock = setup(grant);
    await clock.manager.token();
    clock.advance(61_000);
    await expect(clock.manager.token()).resolves.toMatchObject({ accessToken: 'a-rt-0', refreshToken: 'rt-1' });
    clock.advance(61_000);
    await expect(clock.manager.token()).resolves.toMatchObject({ accessToken: 'a-rt-1', refreshToken: 'rt-1' });
  });

  it('rejects bad options at construction', () => {
    const source = counting();
    expect(() => setup(source.grant, { skew: -1 })).toThrow(/skew must be a non-negative number/);
    expect(() => setup(undefined as unknown as Grant)).toThrow(/auth.grant must be a grant/);
  });
});
