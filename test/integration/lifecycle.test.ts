/** Lifecycle (issue 12, item 5): close() once, calls after it typed, a forgotten close() still exits. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ClosedError, clientCredentials, createClient, createFetch } from '../../src/index.js';
import { startApiServer, startAuthServer } from '../../testing/index.js';
import { json, startServer, type TestServer } from '../helpers/server.js';
import { needs } from '../helpers/services.js';

await needs('redis');
await needs('postgres');
const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe('close()', () => {
  it.each([
    'undici',
    'fetch',
  ] as const)('%s: close() twice is fine; a call after it is a ClosedError and sends nothing', async (transport) => {
    const server = await startServer((_, response) => json(response, 200, {}));
    servers.push(server);
    const client = createClient({ baseURL: server.url, transport });
    await client.get('a');
    // Twice at once and once more after: no error (undici's ClientDestroyedError was thrown before).
    await Promise.all([client.close(), client.close()]);
    await client.close();
    const error = await client.get('b').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ClosedError);
    expect(error).toMatchObject({ code: 'ERR_CLIENT_CLOSED', method: 'GET' });
    expect((error as Error).message).toMatch(/client is closed/);
    expect(server.requests).toBe(1);
    const fetcher = createFetch({ transport });
    await fetcher.close();
    await expect(fetcher(`${server.url}/c`)).rejects.toBeInstanceOf(ClosedError);
    expect(server.requests).toBe(1);
  });

  it.each([
    'undici',
    'fetch',
  ] as const)('%s: calls in flight at close() (waiting for a token, a retry due after it) fail as ClosedError', async (transport) => {
    const auth = await startAuthServer({ delay: 400 });
    const api = await startApiServer({ auth });
    const closers = [auth.close, api.close];
    try {
      const grant = clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
      const waiting = createClient({ baseURL: api.url, transport, auth: { grant } });
      const pending = waiting.get('items/1').catch((error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await waiting.close();
      expect(await pending).toBeInstanceOf(ClosedError);

      const retrying = createClient({
        baseURL: api.url,
        transport,
        retry: { baseDelay: 300, random: () => 1 },
        auth: { grant },
      });
      await retrying.auth.token();
      api.inject({ status: 503 });
      const retry = retrying.get('items/2').catch((error: unknown) => error);
      while (api.counts.injected === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      await retrying.close();
      const error = await retry;
      expect(error).toBeInstanceOf(ClosedError);
      expect(api.counts.ok).toBe(0);

      // createFetch's function too: its close() while a call waits for a token.
      const fetcher = createFetch({ transport, auth: { grant, origins: [api.url] } });
      const fetched = fetcher(`${api.url}/items/3`).catch((caught: unknown) => caught);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await fetcher.close();
      expect(await fetched).toBeInstanceOf(ClosedError);
    } finally {
      for (const close of closers) await close();
    }
  });

  it.each(['redis', 'postgres'])('a script that forgets close() with a %s store exits by itself', async (engine) => {
    const server = await startServer((_, response) => json(response, 200, {}));
    servers.push(server);
    const started = Date.now();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', new URL('../helpers/forget-child.ts', import.meta.url).pathname, engine, server.url],
      { timeout: 15_000 },
    );
    expect(stdout.trim()).toBe('done');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
