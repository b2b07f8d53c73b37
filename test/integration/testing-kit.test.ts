/** `sluice/testing` (issue 12, item 2), imported as a user's test would: sequences, storms, bad bodies. */

import { clientCredentials, createClient, NetworkError, TimeoutError } from 'sluice';
import { startApiServer, startAuthServer } from 'sluice/testing';
import { afterEach, describe, expect, it } from 'vitest';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function setup(transport: 'undici' | 'fetch' = 'undici') {
  const auth = await startAuthServer();
  const api = await startApiServer({ auth });
  const client = createClient({
    baseURL: api.url,
    transport,
    retry: { baseDelay: 1 },
    auth: { grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
  });
  closers.push(auth.close, api.close, () => client.close());
  return { auth, api, client };
}

describe('sluice/testing', () => {
  it('a 503, 503 sequence then the normal answer: the call succeeds on its third attempt', async () => {
    const { api, client } = await setup();
    api.inject({ status: 503 }, { status: 503 });
    expect(await client.get('items/1')).toMatchObject({ id: '1' });
    expect(api.counts.injected).toBe(2);
    expect(api.counts.ok).toBe(1);
  });

  it('a 401 storm after revoke-all: 50 concurrent calls, one new token', async () => {
    const { auth, client } = await setup();
    await client.get('items/0');
    auth.revokeAll();
    await Promise.all(Array.from({ length: 50 }, (_, i) => client.get(`items/${i}`)));
    expect(auth.counts.token).toBe(2);
  });

  it.each([
    'undici',
    'fetch',
  ] as const)('%s: a body cut short is retried for a GET; a slow body meets the timeout', async (transport) => {
    const { api, client } = await setup(transport);
    api.inject({ cutAfter: 10 });
    expect(await client.get('items/2')).toMatchObject({ id: '2' });
    api.inject({ cutAfter: 10 });
    await expect(client.post('echo', { body: { a: 1 } })).rejects.toBeInstanceOf(NetworkError);
    api.inject({ slowBody: 1500, chunks: 5 });
    await expect(client.get('items/3', { timeout: 300, retry: false })).rejects.toBeInstanceOf(TimeoutError);
  });
});
