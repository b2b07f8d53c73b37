/**
 * A run that sends a bearer token, a cookie, an api_key query parameter and a password in a JSON body,
 * logs at debug level, and fails in several ways: no secret may appear anywhere it reports.
 */
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type SluiceEvent } from '../../src/index.js';
import { json, startServer } from '../helpers/server.js';

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer((request, response) => {
    if (request.url.startsWith('/401'))
      json(response, 401, { error: 'no' }, { 'set-cookie': 'session=set-cookie-secret' });
    else if (request.url.startsWith('/500')) json(response, 500, { echo: JSON.parse(request.body.toString() || '{}') });
    else if (request.url.startsWith('/bad-json')) {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"password":"body-password-secret","token":"tok');
    } else if (request.url.startsWith('/reset')) response.socket?.destroy();
    else json(response, 200, { ok: true });
  });
});
afterAll(() => server.close());

describe('redaction', () => {
  it('keeps every secret out of log lines, events, error messages and JSON.stringify(error)', async () => {
    const lines: string[] = [];
    const sink = (level: string) => (obj: object, msg?: string) =>
      lines.push(`${level} ${JSON.stringify(obj)} ${msg} ${inspect(obj, { depth: 8 })}`);
    const events: SluiceEvent[] = [];
    const api = createClient({
      baseURL: server.url,
      headers: { authorization: 'Bearer bearer-token-secret', cookie: 'sid=cookie-secret' },
      logger: { debug: sink('debug'), info: sink('info'), warn: sink('warn'), error: sink('error') },
      logLevel: 'debug',
      onEvent: (event) => events.push(event),
      retry: { limit: 1, baseDelay: 1 },
    });
    const errors: unknown[] = [];
    for (const path of ['ok', '401', '500', 'bad-json', 'reset']) {
      try {
        await api.post(
          `${path}?api_key=query-key-secret&page=2`,
          { user: 'alice', password: 'body-password-secret', nested: { client_secret: 'nested-secret' } },
          { headers: { 'idempotency-key': 'k' } },
        );
      } catch (error) {
        errors.push(error);
      }
    }
    await api.close();
    expect(errors).toHaveLength(4);
    expect(lines.some((line) => line.startsWith('debug'))).toBe(true);
    expect(lines.some((line) => line.includes('[REDACTED]'))).toBe(true);
    const haystack = [
      ...lines,
      ...events.map((event) => `${JSON.stringify(event)} ${inspect(event, { depth: 8 })}`),
      ...errors.map((error) => `${(error as Error).message} ${JSON.stringify(error)} ${String(error)}`),
    ].join('\n');
    for (const secret of [
      'bearer-token-secret',
      'cookie-secret',
      'query-key-secret',
      'body-password-secret',
      'nested-secret',
      'set-cookie-secret',
    ]) {
      expect(haystack.includes(secret), secret).toBe(false);
    }
    // The non-secret parts are still there to debug with.
    expect(haystack).toContain('page=2');
    expect(haystack).toContain('alice');
  });
});
