import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientCredentials, createClient } from '../../src/index.js';
import { type ApiServer, type AuthServer, startApiServer, startAuthServer } from '../../testing/index.js';
import { fakeLock, fakeStore } from '../helpers/fake-store.js';

let auth: AuthServer;
let api: ApiServer;
beforeAll(async () => {
  auth = await startAuthServer();
  api = await startApiServer({ auth });
});
afterAll(async () => {
  await api.close();
  await auth.close();
});

describe('clients sharing one store', () => {
  it('different tenants and scopes never receive each other’s token', async () => {
    const memory = fakeStore();
    const lock = fakeLock();
    const make = (scope: string, tenant: string) =>
      createClient({
        baseURL: api.url,
        auth: {
          grant: clientCredentials({
            tokenURL: auth.tokenURL,
            clientId: 'app',
            clientSecret: 'app-secret',
            scope,
            tenant,
          }),
          store: memory.store,
          lock,
        },
      });
    const a = make('orders', 'tenant-a');
    const b = make('billing', 'tenant-b');
    const c = make('orders', 'tenant-c');
    const [scopeA, scopeB, scopeC] = await Promise.all([
      a.get<{ scope: string }>('whoami'),
      b.get<{ scope: string }>('whoami'),
      c.get<{ scope: string }>('whoami'),
    ]);
    expect(scopeA.scope).toBe('orders');
    expect(scopeB.scope).toBe('billing');
    expect(scopeC.scope).toBe('orders');
    const tokens = await Promise.all([a, b, c].map((client) => client.auth!.token()));
    expect(new Set(tokens.map((tokens) => tokens.accessToken)).size).toBe(3);
    expect(memory.map.size).toBe(3);
    expect(auth.counts.token).toBe(3);
    // No secret and no raw identity in any key.
    for (const key of memory.map.keys()) {
      expect(key).not.toMatch(/app-secret|tenant|orders|billing|at_/);
    }
    // A fourth client with the same identity as `a` shares a's token instead of asking for one.
    const a2 = make('orders', 'tenant-a');
    expect((await a2.auth!.token()).accessToken).toBe(tokens[0]!.accessToken);
    expect(auth.counts.token).toBe(3);
    await Promise.all([a, b, c, a2].map((client) => client.close()));
  });
});
