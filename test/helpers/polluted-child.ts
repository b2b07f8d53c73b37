/**
 * A process whose Object.prototype has been polluted (as a vulnerable dependency would do) before it
 * makes Sluice calls: nothing planted there may change a byte on the wire. argv[2]: JSON { api, token }.
 * Reports { ok, prototypeKeys } or { error }.
 */
import { apiKey, clientCredentials, createClient, createFetch } from '../../src/index.js';

const { api, token } = JSON.parse(process.argv[2] ?? '{}') as { api: string; token: string };
const before = Object.getOwnPropertyNames(Object.prototype).sort();
const planted: Record<string, unknown> = {
  headers: { 'x-planted': 'planted-header' },
  query: { planted: 'planted-query' },
  params: { planted2: 'planted-params' },
  proxy: 'http://127.0.0.1:9/',
  transport: 'fetch',
  dispatcher: { dispatch() {} },
  placement: { query: 'access_token' },
  header: 'x-stolen',
  scheme: 'Planted',
  timeout: 1,
  deadline: 1,
  onRequest: () => {
    throw new Error('planted hook ran');
  },
  baseURL: 'http://127.0.0.1:9/',
  tls: { rejectUnauthorized: false },
  retry: 0,
  auth: false,
  origins: ['http://127.0.0.1:9'],
};
for (const [name, value] of Object.entries(planted)) {
  Object.defineProperty(Object.prototype, name, { value, configurable: true, writable: true, enumerable: false });
}
try {
  const client = createClient({
    baseURL: api,
    auth: [
      { grant: apiKey('gateway-key', { header: 'x-api-key' }) },
      { grant: clientCredentials({ tokenURL: token, clientId: 'app', clientSecret: 'app-secret' }) },
    ],
  });
  await client.get('one');
  await client.post('two', { a: 1 }, {});
  await client.close();
  const sdkFetch = createFetch({ auth: { grant: apiKey('gateway-key', { header: 'x-api-key' }), origins: [api] } });
  await sdkFetch(`${api}/three`);
  await sdkFetch.close();
  for (const name of Object.keys(planted)) delete (Object.prototype as Record<string, unknown>)[name];
  const after = Object.getOwnPropertyNames(Object.prototype).sort();
  process.send?.({ ok: true, prototypeChanged: JSON.stringify(before) !== JSON.stringify(after) });
} catch (error) {
  const cause = (error as Error).cause as Error | undefined;
  process.send?.({ error: `${String((error as Error).stack ?? error)} cause: ${cause?.stack}` });
}
process.disconnect?.();
