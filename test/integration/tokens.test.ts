import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuthError, clientCredentials, createClient, type SluiceClient } from '../../src/index.js';
import { type ApiServer, type AuthServer, startApiServer, startAuthServer } from '../../testing/index.js';

let auth: AuthServer;
let api: ApiServer;
let clients: SluiceClient[] = [];

function client(options: Parameters<typeof createClient>[0] = {}): SluiceClient {
  const made = createClient({
    baseURL: `${api.url}/`,
    auth: { grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
    ...options,
  });
  clients.push(made);
  return made;
}

beforeEach(async () => {
  auth = await startAuthServer();
  api = await startApiServer({ auth });
});

afterEach(async () => {
  await Promise.all(clients.map((made) => made.close()));
  clients = [];
  await api.close();
  await auth.close();
});

describe('one token per burst, against real local servers', () => {
  it('500 concurrent requests on a client with no token make exactly 1 token request', async () => {
    const api1 = client();
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => api1.get<{ id: string }>(`items/${i}`)));
    expect(results.map((item) => item.id)).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
    expect(auth.counts.token).toBe(1);
    expect(api.counts.ok).toBe(500);
  });

  it('200 concurrent requests that all get 401 after a revocation make exactly 1 refresh and 0 failures', async () => {
    const api1 = client();
    await api1.get('items/warmup');
    expect(auth.counts.token).toBe(1);
    auth.revokeAll();
    const settled = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => api1.get(`items/${i}`)));
    expect(settled.filter((result) => result.status === 'rejected')).toEqual([]);
    expect(auth.counts.token).toBe(2);
    expect(api.counts.unauthorized).toBe(200);
  });

  it('a late 401 for a request sent with the previous generation causes no second refresh', async () => {
    const api1 = client();
    await api1.get('items/warmup');
    const before = await api1.auth!.token();
    // Sent with generation 1; the server holds it, and by the time it checks, the token is revoked.
    const late = api1.get<{ id: string }>('items/late', { query: { delay: 300 } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    auth.revokeAll();
    await api1.get('items/fast'); // 401 -> the one refresh -> generation 2
    const after = await api1.auth!.token();
    expect(after.generation).toBe(before.generation + 1);
    await expect(late).resolves.toEqual(expect.objectContaining({ id: 'late' }));
    expect(auth.counts.token).toBe(2);
  });

  it('a 401 that persists after refresh ends in AuthError after exactly one re-issue', async () => {
    const api1 = client();
    await api1.get('items/warmup');
    const seen = api.counts.requests;
    // The API refuses everything from now on: revoke on every token check.
    const check = auth.check;
    auth.check = () => undefined;
    const error = await api1.get('items/1').catch((caught: unknown) => caught);
    auth.check = check;
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).status).toBe(401);
    expect(api.counts.requests - seen).toBe(2);
    expect(auth.counts.token).toBe(2);
  });

  it('10,000 requests with a valid token make no store read per request', async () => {
    const api1 = client();
    await api1.get('items/warmup');
    const manager = api1.auth!.managers[0]!;
    const readsAfterStart = manager.storeReads;
    expect(readsAfterStart).toBeGreaterThan(0);
    for (let batch = 0; batch < 100; batch++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => api1.get(`items/${batch}-${i}`)));
    }
    expect(api.counts.ok).toBe(10_001);
    expect(manager.storeReads).toBe(readsAfterStart);
    expect(auth.counts.token).toBe(1);
  });
});
