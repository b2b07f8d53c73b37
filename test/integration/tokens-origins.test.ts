import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthError, apiKey, clientCredentials, createClient, type SluiceClient } from '../../src/index.js';
import { type ApiServer, type AuthServer, startApiServer, startAuthServer } from '../../testing/index.js';
import { memoryLogger } from '../helpers/logger.js';

/** A server on another port (another origin) that records the headers it receives. */
async function startRecorder(answer: (path: string) => { status: number; headers?: Record<string, string> }) {
  const seen: { path: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      seen.push({ path: request.url ?? '', headers: request.headers, body });
      const { status, headers = {} } = answer(request.url ?? '');
      response.writeHead(status, { 'content-type': 'application/json', ...headers });
      response.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let auth: AuthServer;
let api: ApiServer;
let other: Awaited<ReturnType<typeof startRecorder>>;
let redirector: Awaited<ReturnType<typeof startRecorder>>;
let client: SluiceClient;

beforeAll(async () => {
  auth = await startAuthServer();
  api = await startApiServer({ auth });
  other = await startRecorder(() => ({ status: 200 }));
  // Stands in for the API's origin in the redirect test: it carries the token and redirects away.
  redirector = await startRecorder((path) => ({ status: 302, headers: { location: `${other.url}/landed${path}` } }));
  client = createClient({
    baseURL: redirector.url,
    headers: { cookie: 'session=cookie-secret-1' },
    auth: [
      { grant: apiKey('gateway-key-secret', { header: 'x-api-key' }) },
      { grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
    ],
  });
});
afterAll(async () => {
  await client.close();
  await Promise.all([api.close(), auth.close(), other.close(), redirector.close()]);
});

describe('the credential only goes to its own origin', () => {
  it('an absolute URL to another origin is refused before anything is sent', async () => {
    await expect(client.get(`${other.url}/direct`)).rejects.toMatchObject({ code: 'ERR_ORIGIN_NOT_ALLOWED' });
    expect(other.seen.find((entry) => entry.path === '/direct')).toBeUndefined();
  });

  it('with allowAbsoluteUrls it goes out with no credential at all: token, API key, cookie, secret query', async () => {
    const { logger, lines } = memoryLogger();
    const events: unknown[] = [];
    const open = createClient({
      baseURL: redirector.url,
      allowAbsoluteUrls: true,
      logger,
      logLevel: 'debug',
      onEvent: (event) => events.push(event),
      headers: { cookie: 'session=cookie-secret-1', 'proxy-authorization': 'Basic cHJveHktc2VjcmV0', 'x-plain': 'p' },
      query: { api_key: 'query-key-secret', page: '2' },
      auth: [
        { grant: apiKey('gateway-key-secret', { header: 'x-api-key' }) },
        { grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
      ],
    });
    await open.get(`${other.url}/opened`, { headers: { authorization: 'Bearer per-call-secret' } });
    await open.close();
    const hit = other.seen.find((entry) => entry.path.startsWith('/opened'));
    expect(hit).toBeDefined();
    expect(hit?.path).toBe('/opened?page=2');
    for (const name of ['authorization', 'x-api-key', 'cookie', 'proxy-authorization'])
      expect(hit?.headers[name], name).toBeUndefined();
    expect(hit?.headers['x-plain']).toBe('p');
    expect(JSON.stringify(other.seen)).not.toMatch(/secret|at_/);
    // Nor in what Sluice reported at its most verbose.
    expect(lines.length).toBeGreaterThan(0);
    expect(JSON.stringify(lines) + JSON.stringify(events)).not.toMatch(
      /cookie-secret|query-key-secret|gateway-key-secret|per-call-secret|cHJveHktc2VjcmV0/,
    );
  });

  it('a redirect to another origin arrives without Authorization, Cookie or the API key', async () => {
    await client.get('start');
    const first = redirector.seen.find((entry) => entry.path === '/start');
    expect(first?.headers.authorization).toMatch(/^Bearer at_/);
    expect(first?.headers['x-api-key']).toBe('gateway-key-secret');
    expect(first?.headers.cookie).toBe('session=cookie-secret-1');
    const landed = other.seen.find((entry) => entry.path === '/landed/start');
    expect(landed).toBeDefined();
    expect(landed?.headers.authorization).toBeUndefined();
    expect(landed?.headers.cookie).toBeUndefined();
    expect(landed?.headers['x-api-key']).toBeUndefined();
  });

  it('lookalike hosts never get the token', async () => {
    const guarded = createClient({
      baseURL: 'http://127.0.0.1:1/',
      auth: { grant: apiKey('k-secret', { header: 'x-api-key' }) },
      retry: false,
      allowAbsoluteUrls: true,
    });
    for (const url of [`http://127.0.0.1:1@${other.url.slice(7)}/at`, `${other.url}/at2`]) {
      await guarded.get(url);
    }
    await guarded.close();
    for (const path of ['/at', '/at2']) {
      const hit = other.seen.find((entry) => entry.path === path);
      expect(hit, path).toBeDefined();
      expect(hit?.headers['x-api-key']).toBeUndefined();
    }
  });

  it('a 307 from the token endpoint is not followed: the other origin receives nothing', async () => {
    const before = other.seen.length;
    const evilAuth = await startRecorder(() => ({ status: 307, headers: { location: `${other.url}/stolen` } }));
    const victim = createClient({
      baseURL: api.url,
      auth: {
        grant: clientCredentials({
          tokenURL: `${evilAuth.url}/oauth/token`,
          clientId: 'app',
          clientSecret: 'app-secret',
        }),
      },
    });
    const error = await victim.get('items/1').catch((caught: unknown) => caught);
    await victim.close();
    await evilAuth.close();
    expect(error).toBeInstanceOf(AuthError);
    expect((error as AuthError).code).toBe('AUTH_REDIRECT_REFUSED');
    expect(evilAuth.seen).toHaveLength(1);
    expect(other.seen.length).toBe(before);
    expect(JSON.stringify(error)).not.toContain('app-secret');
    expect((error as Error).message).not.toContain('app-secret');
  });
});
