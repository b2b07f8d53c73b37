/**
 * Custom logins that fit real systems (issue 11, item 3), beyond what the recipes show: the grant
 * context's fetch (baseURL, default headers only to the API's origins), cookie sessions (headers, a body
 * function, rotation shared through the store, a deleted cookie), renewal without a refresh token, and a
 * refusal left to the layer whose scheme it names.
 */
import Keyv from 'keyv';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  cookieSession,
  createClient,
  customGrant,
  staticToken,
  UnauthorizedError,
} from '../../src/index.js';
import { keyvTokenStore } from '../../stores/index.js';
import { json, type Seen, startServer } from '../helpers/server.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe("the grant context's fetch", () => {
  it('resolves a path against baseURL and sends the default headers to the API origin, not to an identity provider', async () => {
    const api = await startServer((request, response) => {
      if (request.url === '/v2/login') return json(response, 200, { token: 'from-api-login' });
      json(response, 200, { ok: true });
    });
    const idp = await startServer((_, response) => json(response, 200, { token: 'from-idp' }));
    closers.push(api.close, idp.close);
    const client = createClient({
      baseURL: `${api.url}/v2/`,
      headers: { 'X-Requested-By': 'sluice-test', 'X-Tenant-Key': 'tenant-secret' },
      auth: {
        grant: customGrant({
          id: 'two-logins',
          async obtain({ fetch }) {
            await fetch(`${idp.url}/token`, { method: 'POST' });
            const response = await fetch('login', { method: 'POST', headers: { 'x-requested-by': 'login-own' } });
            const body = (await response.json()) as { token: string };
            return { accessToken: body.token, expiresIn: 3600 };
          },
        }),
      },
    });
    closers.push(() => client.close());
    await client.get('things');
    const login = api.seen.find((seen) => seen.url === '/v2/login') as Seen;
    expect(login.headers['x-requested-by']).toBe('login-own'); // the request's own header wins
    expect(login.headers['x-tenant-key']).toBe('tenant-secret');
    expect(idp.seen[0]?.headers['x-requested-by']).toBeUndefined();
    expect(idp.seen[0]?.headers['x-tenant-key']).toBeUndefined();
    expect(api.seen.at(-1)?.headers.authorization).toBe('Bearer from-api-login');
  });

  it('a path without a baseURL is a typed AuthError, not a request to nowhere', async () => {
    const api = await startServer((_, response) => json(response, 200, {}));
    closers.push(api.close);
    const client = createClient({
      auth: {
        origins: [api.url],
        grant: customGrant({
          id: 'no-base',
          obtain: async ({ fetch }) => ({ accessToken: String((await fetch('login')).status) }),
        }),
      },
    });
    closers.push(() => client.close());
    await expect(client.get(`${api.url}/x`)).rejects.toMatchObject({ code: 'AUTH_BAD_URL' });
  });
});

describe('cookieSession', () => {
  function sessionServer(options: { rotateOn?: string; endOn?: string } = {}) {
    let logins = 0;
    let current = '';
    return startServer((request, response) => {
      if (request.url === '/api/login') {
        logins++;
        current = `s${logins}`;
        const body = JSON.parse(request.body.toString()) as { user: string; attempt: number };
        if (request.headers['x-csrf'] !== 'yes' || body.user !== 'ada') return json(response, 400, {});
        response.writeHead(204, { 'set-cookie': [`SID=${current}; Path=/; HttpOnly`, 'theme=dark; Path=/'] });
        response.end();
        return;
      }
      if (request.headers.cookie !== `SID=${current}`) return json(response, 401, {});
      if (request.url === options.rotateOn) {
        current = `${current}r`;
        return json(response, 200, { rotated: true }, { 'set-cookie': `SID=${current}; Path=/; HttpOnly` });
      }
      if (request.url === options.endOn) {
        current = '';
        return json(response, 200, {}, { 'set-cookie': 'SID=; Max-Age=0; Path=/' });
      }
      json(response, 200, { cookie: request.headers.cookie });
    });
  }

  it('sends headers and a body built at each login; only the named cookies are kept', async () => {
    const server = await sessionServer();
    closers.push(server.close);
    let built = 0;
    const client = createClient({
      baseURL: server.url,
      auth: {
        grant: cookieSession({
          id: 'local:ada',
          loginURL: 'api/login',
          headers: { 'X-CSRF': 'yes' },
          body: () => ({ user: 'ada', attempt: ++built }),
          cookies: ['SID'],
        }),
      },
    });
    closers.push(() => client.close());
    expect(await client.get('me')).toEqual({ cookie: 'SID=s1' });
    client.auth?.invalidate();
    expect(await client.get('me')).toEqual({ cookie: 'SID=s2' });
    expect(built).toBe(2);
  });

  it('a rotated cookie is used at once and reaches the store: another client on it logs in no more', async () => {
    const server = await sessionServer({ rotateOn: '/rotate' });
    closers.push(server.close);
    const store = keyvTokenStore(new Keyv());
    const make = () =>
      createClient({
        baseURL: server.url,
        auth: {
          store,
          grant: cookieSession({
            loginURL: `${server.url}/api/login`,
            headers: { 'X-CSRF': 'yes' },
            body: { user: 'ada', password: 'pw' },
            cookies: ['SID'],
          }),
        },
      });
    const first = make();
    closers.push(() => first.close());
    await first.get('me');
    await first.get('rotate');
    expect(await first.get('me')).toEqual({ cookie: 'SID=s1r' });
    await new Promise((resolve) => setTimeout(resolve, 20)); // the store write is in the background
    const second = make();
    closers.push(() => second.close());
    expect(await second.get('me')).toEqual({ cookie: 'SID=s1r' });
    expect(server.seen.filter((seen) => seen.url === '/api/login')).toHaveLength(1);
  });

  it('a rotated cookie with a control character is ignored: the response stands, the session stays', async () => {
    let calls = 0;
    const server = await startServer((request, response) => {
      if (request.url === '/login') {
        response.writeHead(204, { 'set-cookie': 'SID=good; Path=/' });
        response.end();
        return;
      }
      calls++;
      // A tab passes HTTP and the cookie parser, but no token may carry a control character.
      json(response, 200, { cookie: request.headers.cookie }, calls === 1 ? { 'set-cookie': 'SID=bad\tvalue' } : {});
    });
    closers.push(server.close);
    const client = createClient({
      baseURL: server.url,
      auth: { grant: cookieSession({ loginURL: `${server.url}/login`, cookies: ['SID'] }) },
    });
    closers.push(() => client.close());
    expect(await client.get('a')).toEqual({ cookie: 'SID=good' });
    expect(await client.get('b')).toEqual({ cookie: 'SID=good' });
  });

  it('a rotation that arrives after invalidate() does not bring the old session back; an unreadable Expires is no deletion', async () => {
    let logins = 0;
    const server = await startServer((request, response) => {
      if (request.url === '/login') {
        logins++;
        response.writeHead(204, { 'set-cookie': `SID=s${logins}; Path=/` });
        response.end();
        return;
      }
      if (request.url === '/slow') {
        setTimeout(() => json(response, 200, {}, { 'set-cookie': `SID=late${logins}; Path=/` }), 150);
        return;
      }
      if (request.url === '/odd') {
        json(response, 200, {}, { 'set-cookie': `SID=odd${logins}; Expires=not a date; Path=/` });
        return;
      }
      json(response, 200, { cookie: request.headers.cookie });
    });
    closers.push(server.close);
    const client = createClient({
      baseURL: server.url,
      auth: { grant: cookieSession({ loginURL: `${server.url}/login`, cookies: ['SID'] }) },
    });
    closers.push(() => client.close());
    await client.get('me');
    const slow = client.get('slow');
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.auth?.invalidate();
    await slow;
    expect(await client.get('me')).toEqual({ cookie: 'SID=s2' });
    await client.get('odd');
    expect(await client.get('me')).toEqual({ cookie: 'SID=odd2' });
    expect(logins).toBe(2);
  });

  it('a cookie the server deletes ends the session: the next call logs in again, with no 401', async () => {
    const server = await sessionServer({ endOn: '/logout' });
    closers.push(server.close);
    const client = createClient({
      baseURL: server.url,
      auth: {
        grant: cookieSession({
          loginURL: `${server.url}/api/login`,
          headers: { 'X-CSRF': 'yes' },
          body: { user: 'ada' },
          cookies: ['SID'],
        }),
      },
    });
    closers.push(() => client.close());
    await client.get('me');
    await client.get('logout');
    expect(await client.get('me')).toEqual({ cookie: 'SID=s2' });
    expect(server.seen.map((seen) => seen.url)).toEqual(['/api/login', '/me', '/logout', '/api/login', '/me']);
  });

  it('a relative loginURL or a body function needs an id; two users on one login URL are two sessions', () => {
    expect(() => cookieSession({ loginURL: 'api/login' })).toThrow(ConfigError);
    expect(() => cookieSession({ loginURL: 'https://h.example/login', body: () => ({}) })).toThrow(/give an id/);
    expect(() => cookieSession({ loginURL: '//evil.example/login', id: 'x' })).toThrow(ConfigError);
    const ada = cookieSession({ loginURL: 'https://h.example/login', body: { user: 'ada', password: 'a' } });
    const bob = cookieSession({ loginURL: 'https://h.example/login', body: { user: 'bob', password: 'a' } });
    expect(ada.identity).not.toEqual(bob.identity);
    // Only fields that say who logs in reach the store key; a PIN or an OTP, whatever its name, does not.
    const pin = cookieSession({ loginURL: 'https://h.example/login', body: { user: 'ada', pin: '9137', otp: '55' } });
    expect(JSON.stringify(pin.identity)).toContain('ada');
    expect(JSON.stringify(pin.identity)).not.toMatch(/9137|55/);
  });
});

describe('renewal without a refresh token', () => {
  it('renew runs before obtain while the token lives; a refused renewal falls back to obtain', async () => {
    const server = await startServer((_, response) => json(response, 200, {}));
    closers.push(server.close);
    const calls: string[] = [];
    let refuse = false;
    const client = createClient({
      baseURL: server.url,
      auth: {
        grant: customGrant({
          id: 'renewing',
          placement: { header: 'x-session' },
          obtain: async () => {
            calls.push('obtain');
            return { accessToken: `t${calls.length}`, expiresIn: 3600 };
          },
          renew: async (_, tokens) => {
            calls.push(`renew ${tokens.accessToken}`);
            if (refuse) throw new (await import('../../src/index.js')).AuthError('expired', { status: 403 });
            return { accessToken: tokens.accessToken, expiresIn: 3600 };
          },
        }),
      },
    });
    closers.push(() => client.close());
    await client.get('a');
    client.auth?.invalidate();
    await client.get('b');
    refuse = true;
    client.auth?.invalidate();
    await client.get('c');
    expect(calls).toEqual(['obtain', 'renew t1', 'renew t1', 'obtain']);
    expect(server.seen.map((seen) => seen.headers['x-session'])).toEqual(['t1', 't1', 't4']);
  });
});

describe('several auth layers', () => {
  it('a single bearer layer still refreshes on a 401 whose challenge names another scheme', async () => {
    let tokens = 0;
    const server = await startServer((request, response) => {
      if (request.url === '/token') {
        tokens++;
        return json(response, 200, { access_token: `at${tokens}`, token_type: 'Bearer' });
      }
      if (request.headers.authorization !== 'Bearer at2')
        return json(response, 401, {}, { 'www-authenticate': 'Basic realm="misconfigured"' });
      json(response, 200, { ok: true });
    });
    closers.push(server.close);
    const client = createClient({
      baseURL: server.url,
      auth: {
        grant: customGrant({
          id: 'single',
          obtain: async ({ fetch }) => {
            const body = (await (await fetch('token', { method: 'POST' })).json()) as { access_token: string };
            return { accessToken: body.access_token };
          },
        }),
      },
    });
    closers.push(() => client.close());
    expect(await client.get('x')).toEqual({ ok: true });
    expect(tokens).toBe(2);
  });

  it("a 401 naming only the gateway's scheme is the gateway's: no token request, the API's error as it is", async () => {
    let tokens = 0;
    const server = await startServer((request, response) => {
      if (request.url === '/token') {
        tokens++;
        return json(response, 200, { access_token: `at${tokens}`, token_type: 'Bearer', expires_in: 3600 });
      }
      if (request.headers['x-gateway-key'] !== 'good')
        return json(response, 401, { message: 'bad key' }, { 'www-authenticate': 'Key realm="gw"' });
      if (request.headers.authorization !== `Bearer at${tokens}`)
        return json(response, 401, {}, { 'www-authenticate': 'Bearer error="invalid_token"' });
      json(response, 200, { ok: true });
    });
    closers.push(server.close);
    const layers = (key: string) =>
      createClient({
        baseURL: server.url,
        auth: [
          { grant: staticToken(key, { header: 'x-gateway-key' }) },
          {
            grant: customGrant({
              id: 'upstream',
              obtain: async ({ fetch }) => {
                const body = (await (await fetch('token', { method: 'POST' })).json()) as { access_token: string };
                return { accessToken: body.access_token, expiresIn: 3600 };
              },
            }),
          },
        ],
      });
    const bad = layers('bad');
    closers.push(() => bad.close());
    const error = await bad.get('x').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect((error as UnauthorizedError).body).toEqual({ message: 'bad key' });
    expect(tokens).toBe(1);
    expect(server.seen.filter((seen) => seen.url === '/x')).toHaveLength(1);
  });
});
