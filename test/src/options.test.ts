/** Options checked where they are written (issue 12, item 3): typos fail, `undefined` means "not given". */
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  clientCredentials,
  cookieSession,
  createClient,
  customGrant,
  passwordGrant,
} from '../../src/index.js';
import { keyvTokenStore, postgresTokenStore, redisLock, redisTokenStore } from '../../stores/index.js';

const grant = { tokenURL: 'https://idp.example/token', clientId: 'a', clientSecret: 'b' };

describe('unknown option names are a ConfigError that lists the valid ones', () => {
  it.each([
    [
      'per-call',
      () => createClient({ baseURL: 'https://a.example' }).get('x', { timout: 5 } as never),
      /request option "timout".*timeout/,
    ],
    ['retry', () => createClient({ retry: { limt: 1 } as never }), /retry option "limt".*limit/],
    [
      'clientCredentials',
      () => clientCredentials({ ...grant, scopes: 'x' } as never),
      /clientCredentials option "scopes".*scope/,
    ],
    [
      'passwordGrant',
      () => passwordGrant({ ...grant, user: 'u', password: 'p' } as never),
      /passwordGrant option "user".*username/,
    ],
    [
      'customGrant',
      () => customGrant({ id: 'x', obtain: async () => ({ accessToken: 't' }), refesh: 1 } as never),
      /customGrant option "refesh"/,
    ],
    [
      'cookieSession',
      () => cookieSession({ loginUrl: 'https://a.example/login' } as never),
      /cookieSession option "loginUrl".*loginURL/,
    ],
    [
      'redisTokenStore',
      () => redisTokenStore('redis://127.0.0.1:6379', { namspace: 'x' } as never),
      /redisTokenStore option "namspace".*namespace/,
    ],
    [
      'redisTokenStore target: a misspelt topology',
      () => redisTokenStore({ clusters: ['redis://a:6379'] } as never),
      /redisTokenStore target option "clusters".*sentinels/,
    ],
    [
      'redisTokenStore target: an empty Cluster',
      () => redisTokenStore({ cluster: [] }),
      /cluster must list at least one node/,
    ],
    [
      'redisTokenStore target: a Sentinel without the master name',
      () => redisTokenStore({ sentinels: ['redis://a:26379'] } as never),
      /name must be the Sentinel master's name/,
    ],
    [
      'redisTokenStore target: a node URL of another scheme',
      () => redisTokenStore({ cluster: ['redis://a:6379', 'http://b:6379'] }),
      /every url must look like redis:/,
    ],
    [
      'postgresTokenStore',
      () => postgresTokenStore('postgres://h/db', { tabel: 'x' } as never),
      /postgresTokenStore option "tabel".*table/,
    ],
    [
      'redisLock',
      () => redisLock({ sendCommand: async () => null }, { prefx: 'x' } as never),
      /redisLock option "prefx"/,
    ],
  ])('%s', async (_, make, message) => {
    const error = await (async () => make())().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
  });

  it('paginate options too, before anything is sent', async () => {
    const api = createClient({ baseURL: 'http://127.0.0.1:9' });
    await expect(api.paginateAll('x', { maxPage: 2 } as never)).rejects.toThrow(/paginate option "maxPage".*maxPages/);
    await api.close();
  });
});

describe('an undefined option is an option not given (exactOptionalPropertyTypes, process.env)', () => {
  it('client, auth, stores', async () => {
    const env: Record<string, string | undefined> = {};
    const api = createClient({
      baseURL: 'https://a.example',
      timeout: undefined,
      proxy: env.HTTPS_PROXY,
      logger: undefined,
      auth: { grant: clientCredentials({ ...grant, scope: env.SCOPE }), skew: undefined },
    });
    await api.close();
    const shared = redisTokenStore('redis://127.0.0.1:6379', {
      encryptionKey: env.TOKEN_KEY,
      namespace: env.NS,
      shared: true,
    });
    await shared.close();
    const { default: Keyv } = await import('keyv');
    expect(() => keyvTokenStore(new Keyv(), { encryptionKey: env.TOKEN_KEY })).not.toThrow();
  });
});
