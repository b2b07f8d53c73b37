/** Rate limits as real APIs send them (issue 11, item 1): GitHub-style headers against a real server. */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, RateLimitError, type SluiceClient } from '../../src/index.js';
import { json, serverPool } from '../helpers/server.js';
import { rejection } from '../helpers/wait.js';

const servers = serverPool();
const clients: SluiceClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await servers.closeAll();
});

function client(url: string): SluiceClient {
  const api = createClient({ baseURL: url, retry: { random: () => 0 } });
  clients.push(api);
  return api;
}

/** GitHub's informational headers: plenty left, reset an hour away (epoch seconds). */
const quota = (left: number, resetInS = 3600) => ({
  'x-ratelimit-limit': '5000',
  'x-ratelimit-remaining': String(left),
  'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + resetInS),
});

describe('rate-limit headers', () => {
  it('a 502 that carries informational quota headers is retried as usual, not skipped as a one-hour wait', async () => {
    const s = await servers.start((_, response, index) => {
      if (index === 0) json(response, 502, { message: 'Server Error' }, quota(4999));
      else json(response, 200, { ok: true }, quota(4998));
    });
    await expect(client(s.url).get('repos')).resolves.toEqual({ ok: true });
    expect(s.requests).toBe(2);
  });

  it('a 403 with remaining 0 is a rate limit: retried after X-RateLimit-Reset (within maxRetryAfter)', async () => {
    const s = await servers.start((_, response, index) => {
      if (index === 0) json(response, 403, { message: 'API rate limit exceeded' }, quota(0, 1));
      else json(response, 200, { ok: true }, quota(4999));
    });
    const started = Date.now();
    await expect(client(s.url).get('repos')).resolves.toEqual({ ok: true });
    expect(s.requests).toBe(2);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('a 403 secondary limit (Retry-After) is a RateLimitError with retryAfter when retries run out', async () => {
    const s = await servers.start((_, response) =>
      json(response, 403, { message: 'secondary rate limit' }, { 'retry-after': '1', ...quota(10) }),
    );
    const api = createClient({ baseURL: s.url, retry: { limit: 0 } });
    clients.push(api);
    const error = await rejection(api.get('search'));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ status: 403, retryAfter: 1000, retryable: true });
  });

  it('a plain 403 is a ForbiddenError and is not retried; a 429 without Retry-After waits for the reset', async () => {
    const s = await servers.start((request, response, index) => {
      if (request.url === '/private') json(response, 403, { message: 'Must have admin rights' }, quota(4000));
      else if (index === 1) json(response, 429, {}, { 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 1) });
      else json(response, 200, { ok: true });
    });
    const api = client(s.url);
    await expect(api.get('private')).rejects.toMatchObject({ name: 'ForbiddenError', status: 403 });
    expect(s.requests).toBe(1);
    await expect(api.get('public')).resolves.toEqual({ ok: true });
    expect(s.requests).toBe(3);
  });
});

describe('a saved token set seeds the client after a restart (fitbit-style)', () => {
  it('auth.initial is used when the store is empty: no refresh token spent, no login; refresh later uses it', async () => {
    const forms: URLSearchParams[] = [];
    const s = await servers.start((request, response) => {
      if (request.url === '/token') {
        forms.push(new URLSearchParams(request.body.toString()));
        json(response, 200, {
          access_token: 'at-new',
          refresh_token: 'rt-new',
          token_type: 'Bearer',
          expires_in: 3600,
        });
      } else if (request.headers.authorization === 'Bearer at-saved' && forms.length === 0)
        json(response, 200, { ok: 'saved' });
      else if (request.headers.authorization === 'Bearer at-new') json(response, 200, { ok: 'new' });
      else json(response, 401, {});
    });
    const { refreshTokenGrant } = await import('../../src/index.js');
    const saved = { accessToken: 'at-saved', refreshToken: 'rt-saved', expiresAt: Date.now() + 3_600_000 };
    const api = createClient({
      baseURL: s.url,
      auth: {
        grant: refreshTokenGrant({ tokenURL: `${s.url}/token`, clientId: 'app', refreshToken: 'rt-seed-old' }),
        initial: saved,
      },
    });
    clients.push(api);
    await expect(api.get('x')).resolves.toEqual({ ok: 'saved' });
    expect(forms).toHaveLength(0);
    api.auth?.invalidate();
    await expect(api.get('x')).resolves.toEqual({ ok: 'new' });
    expect(forms.map((form) => form.get('refresh_token'))).toEqual(['rt-saved']);
  });
});

describe('client-side pacing (paceRateLimits)', () => {
  /** The first answer spends the limit (200 with remaining 0, reset in 1 s); later ones are fine. */
  async function spentServer() {
    return servers.start((_, response, index) => {
      json(response, 200, { index }, index === 0 ? quota(0, 1) : quota(10));
    });
  }

  it("'wait': a later call to that origin sends nothing before the reset, then goes through", async () => {
    const s = await spentServer();
    const api = createClient({ baseURL: s.url, paceRateLimits: 'wait' });
    clients.push(api);
    await api.get('a');
    const started = Date.now();
    expect(await api.get('b')).toEqual({ index: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(s.requests).toBe(2);
    expect(s.seen[1]?.at).toBeGreaterThanOrEqual(started + 400);
  });

  it("'wait' holds a POST too: the pacer's answer was never sent, so it is safe to send after the wait", async () => {
    const s = await spentServer();
    const api = createClient({ baseURL: s.url, paceRateLimits: 'wait' });
    clients.push(api);
    await api.get('a');
    const started = Date.now();
    expect(await api.post('b', { body: { n: 1 } })).toEqual({ index: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(s.requests).toBe(2);
  });

  it("'fail': a later call fails at once with RateLimitError RATE_LIMIT_PACED, nothing sent; without pacing it is sent", async () => {
    const s = await spentServer();
    const api = createClient({ baseURL: s.url, paceRateLimits: 'fail' });
    clients.push(api);
    await api.get('a');
    const started = Date.now();
    const error = await rejection(api.get('b'));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({ code: 'RATE_LIMIT_PACED', status: 429 });
    expect((error as RateLimitError).retryAfter).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(200);
    expect(s.requests).toBe(1);
    const plain = client(s.url);
    await plain.get('c');
    expect(s.requests).toBe(2);
  });

  it("'wait' within the call's budget only: a reset past the deadline fails as a rate limit, nothing sent", async () => {
    const s = await servers.start((_, response) => json(response, 429, {}, { 'retry-after': '30' }));
    const api = createClient({ baseURL: s.url, paceRateLimits: 'wait', retry: { limit: 0 } });
    clients.push(api);
    await rejection(api.get('a'));
    const error = await rejection(api.get('b', { deadline: 500 }));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(s.requests).toBe(1);
    expect(() => createClient({ baseURL: s.url, paceRateLimits: 'always' as 'wait' })).toThrow(/paceRateLimits/);
  });
});
