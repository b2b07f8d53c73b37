import { afterEach, describe, expect, it } from 'vitest';
import { createClient, passwordGrant } from '../../src/index.js';
import { startApiServer, startAuthServer } from '../../testing/index.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe('rotating refresh tokens', () => {
  it('a long run with frequent expiry and concurrency never reuses a refresh token', async () => {
    // Tokens live 1 s; the manager refreshes in the last quarter of that, in the background.
    const auth = await startAuthServer({ lifetime: 1, refreshTokens: true, reuseDetection: true });
    const api = await startApiServer({ auth });
    closers.push(auth.close, api.close);
    const client = createClient({
      baseURL: api.url,
      auth: {
        grant: passwordGrant({
          tokenURL: auth.tokenURL,
          clientId: 'app',
          clientSecret: 'app-secret',
          username: 'alice',
          password: 'wonderland',
        }),
        skew: 300,
        jitter: 200,
      },
    });
    closers.push(() => client.close());
    const until = Date.now() + 4000;
    let done = 0;
    let failed = 0;
    await Promise.all(
      Array.from({ length: 20 }, async (_, worker) => {
        while (Date.now() < until) {
          try {
            await client.get(`items/${worker}`);
            done++;
          } catch {
            failed++;
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }),
    );
    expect(failed).toBe(0);
    expect(done).toBeGreaterThan(200);
    expect(auth.counts.reuse).toBe(0);
    // About one refresh per second of lifetime: never one per request, never zero.
    expect(auth.counts.refresh).toBeGreaterThanOrEqual(3);
    expect(auth.counts.refresh).toBeLessThanOrEqual(12);
  });
});
