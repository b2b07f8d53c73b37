/** Lifecycle (issue 12, item 5): close() once, calls after it typed, a forgotten close() still exits. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ClosedError, createClient, createFetch } from '../../src/index.js';
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
