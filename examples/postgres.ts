/** Two clients share one token through PostgreSQL (an advisory lock, a table). `npx tsx examples/postgres.ts` */
import { clientCredentials, createClient } from 'sluice';
import { postgresTokenStore } from 'sluice/stores';
import { startApiServer, startAuthServer } from 'sluice/testing';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const auth = await startAuthServer();
const api = await startApiServer({ auth });
const grant = clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
const namespace = `example-${process.pid}`;
{
  await using one = createClient({ baseURL: api.url, auth: { grant, ...postgresTokenStore(url, { namespace }) } });
  await using two = createClient({ baseURL: api.url, auth: { grant, ...postgresTokenStore(url, { namespace }) } });
  await Promise.all([one.get('whoami'), two.get('whoami')]);
  console.log(`2 clients, ${auth.counts.token} token request`);
}
await Promise.all([auth.close(), api.close()]);
