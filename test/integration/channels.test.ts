/** diagnostics_channel (issue 12, item 1): sluice:* channels carry redacted data and follow each call. */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { clientCredentials, createClient } from '../../src/index.js';
import { startApiServer, startAuthServer } from '../../testing/index.js';
import { json, startServer } from '../helpers/server.js';

const NAMES = [
  'sluice:request:start',
  'sluice:request:end',
  'sluice:request:error',
  'sluice:attempt',
  'sluice:retry',
  'sluice:redirect',
  'sluice:reissue',
  'sluice:token',
];
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function record() {
  const seen: { name: string; message: Record<string, unknown> }[] = [];
  for (const name of NAMES) {
    const handler = (message: unknown) => {
      seen.push({ name, message: message as Record<string, unknown> });
    };
    subscribe(name, handler);
    closers.push(() => {
      unsubscribe(name, handler);
    });
  }
  return seen;
}

describe('sluice:* channels', () => {
  it('a call with a token, a revocation and a retry: start/end, attempts, retry, reissue, token; no secret in any message', async () => {
    const auth = await startAuthServer();
    const api = await startApiServer({ auth });
    let flaky = 0;
    const edge = await startServer((request, response) => {
      if (request.url.startsWith('/flaky') && flaky++ === 0) return json(response, 503, {});
      if (request.url.startsWith('/missing')) return json(response, 404, { message: 'nope' });
      json(response, 200, { ok: true });
    });
    closers.push(auth.close, api.close, edge.close);
    const seen = record();
    const client = createClient({
      baseURL: api.url,
      redact: ['key'],
      retry: { baseDelay: 1 },
      auth: {
        grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }),
        origins: [edge.url],
      },
    });
    closers.push(() => client.close());
    await client.get('whoami?key=QUERY-SECRET');
    auth.revokeAll();
    await client.get('whoami');
    await client.get(`${edge.url}/flaky?key=QUERY-SECRET`);
    await client.get(`${edge.url}/missing`).catch(() => {});
    const names = new Set(seen.map((entry) => entry.name));
    for (const name of NAMES.filter((name) => name !== 'sluice:redirect')) expect(names, name).toContain(name);
    const starts = seen.filter((entry) => entry.name === 'sluice:request:start');
    const ends = seen.filter((entry) => entry.name === 'sluice:request:end');
    expect(starts).toHaveLength(4);
    expect(ends.map((entry) => entry.message.status)).toEqual([200, 200, 200]);
    expect(ends[2]?.message).toMatchObject({ method: 'GET', attempts: 2 });
    expect(ends[0]?.message.requestId).toBe(starts[0]?.message.requestId);
    const failed = seen.find((entry) => entry.name === 'sluice:request:error');
    expect((failed?.message.error as Error).name).toBe('NotFoundError');
    const token = (await client.auth?.token())?.accessToken as string;
    const text = JSON.stringify(seen);
    for (const secret of [token, 'app-secret', 'QUERY-SECRET']) expect(text).not.toContain(secret);
  });

  it('with no subscriber and no onEvent no event is produced; a subscriber turns them on', async () => {
    const edge = await startServer((_, response) => json(response, 200, {}));
    closers.push(edge.close);
    const sinks: boolean[] = [];
    const client = createClient({
      baseURL: edge.url,
      middleware: (defaults) => [
        ...defaults,
        (request, next) => {
          sinks.push(request.events !== undefined);
          return next(request);
        },
      ],
    });
    closers.push(() => client.close());
    await client.get('x');
    const seen = record();
    await client.get('y');
    expect(sinks).toEqual([false, true]);
    expect(seen.map((entry) => entry.name)).toContain('sluice:attempt');
  });
});
