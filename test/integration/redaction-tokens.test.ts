/**
 * Every secret of every grant, searched for in every log line, event, error message and serialized
 * error of a run that logs at debug level and makes things fail.
 */
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuthOptions,
  apiKey,
  basicAuth,
  clientCredentials,
  cookieSession,
  createClient,
  customGrant,
  passwordGrant,
  type SluiceEvent,
  staticToken,
} from '../../src/index.js';
import { type ApiServer, type AuthServer, startApiServer, startAuthServer } from '../../testing/index.js';

let auth: AuthServer;
let api: ApiServer;
beforeAll(async () => {
  auth = await startAuthServer({
    refreshTokens: true,
    lifetime: 2,
    clients: { app: 'client-secret-value' },
    users: { alice: 'password-value' },
  });
  api = await startApiServer({ auth });
});
afterAll(async () => {
  await api.close();
  await auth.close();
});

describe('no secret of any grant reaches logs, events, messages or JSON', () => {
  it('holds for every grant, with failures, at debug level', async () => {
    const lines: string[] = [];
    const sink = (level: string) => (obj: object, msg?: string) => {
      lines.push(`${level} ${JSON.stringify(obj)} ${msg ?? ''} ${inspect(obj, { depth: 6 })}`);
    };
    const logger = { debug: sink('debug'), info: sink('info'), warn: sink('warn'), error: sink('error') };
    const events: SluiceEvent[] = [];
    const errors: unknown[] = [];
    const tokenSets: unknown[] = [];
    const secrets = ['client-secret-value', 'password-value', 'static-pat-value', 'api-key-value', 'basic-pass-value'];

    const grants: Record<string, AuthOptions['grant']> = {
      clientCredentials: clientCredentials({
        tokenURL: auth.tokenURL,
        clientId: 'app',
        clientSecret: 'client-secret-value',
      }),
      clientCredentialsBody: clientCredentials({
        tokenURL: auth.tokenURL,
        clientId: 'app',
        clientSecret: 'client-secret-value',
        authMethod: 'body',
      }),
      password: passwordGrant({
        tokenURL: auth.tokenURL,
        clientId: 'app',
        clientSecret: 'client-secret-value',
        username: 'alice',
        password: 'password-value',
      }),
      custom: customGrant({
        id: 'login:alice',
        async obtain({ fetch }) {
          const response = await fetch(`${auth.url}/auth/token/full`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              username: 'alice',
              password: 'password-value',
              validity_time_in_sec: 60,
              org_id: 7,
            }),
          });
          const body = (await response.json()) as { token: string; expiration_time_in_millis: number };
          return { accessToken: body.token, expiresAt: body.expiration_time_in_millis };
        },
      }),
      cookie: cookieSession({ loginURL: `${auth.url}/login`, body: { username: 'alice', password: 'password-value' } }),
      pat: staticToken('static-pat-value'),
      key: apiKey('api-key-value', { query: 'api_key' }),
      basic: basicAuth('bob', 'basic-pass-value'),
      // Failing ones: a wrong secret, a wrong password.
      badClient: clientCredentials({
        tokenURL: auth.tokenURL,
        clientId: 'app',
        clientSecret: 'client-secret-value-wrong',
      }),
      badPassword: passwordGrant({
        tokenURL: auth.tokenURL,
        clientId: 'app',
        clientSecret: 'client-secret-value',
        username: 'alice',
        password: 'password-value-wrong',
      }),
    };
    for (const [name, grant] of Object.entries(grants)) {
      const client = createClient({
        baseURL: api.url,
        logger,
        logLevel: 'debug',
        onEvent: (event) => events.push(event),
        auth: { grant },
      });
      for (const path of ['items/1', 'nope', 'items/2?password=password-value&token=static-pat-value']) {
        try {
          await client.post(path, { password: 'password-value', client_secret: 'client-secret-value' });
        } catch (error) {
          errors.push(error);
        }
      }
      if (client.auth && !['pat', 'key', 'basic'].includes(name)) {
        try {
          tokenSets.push(await client.auth.token());
        } catch (error) {
          errors.push(error);
        }
      }
      await client.close();
    }
    expect(errors.length).toBeGreaterThan(5);
    expect(errors.some((error) => (error as Error).name === 'AuthError')).toBe(true);
    const issued = auth.issued();
    expect(issued.length).toBeGreaterThan(3);
    const haystack = [
      ...lines,
      ...events.map((event) => `${JSON.stringify(event)} ${inspect(event, { depth: 6 })}`),
      ...errors.map((error) => `${(error as Error).message} ${JSON.stringify(error)} ${String(error)}`),
      ...tokenSets.map((tokens) => `${JSON.stringify(tokens)} ${inspect(tokens)}`),
    ].join('\n');
    expect(lines.length).toBeGreaterThan(20);
    for (const secret of [...secrets, ...issued, Buffer.from('bob:basic-pass-value').toString('base64')]) {
      expect(haystack.includes(secret), `secret ${secret.slice(0, 6)}… found`).toBe(false);
    }
  });
});
