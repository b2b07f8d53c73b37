/** A first request: a client with OAuth client credentials, against local servers. `npx tsx examples/first-request.ts` */
import { clientCredentials, createClient } from 'sluice';
import { startApiServer, startAuthServer } from 'sluice/testing';

const auth = await startAuthServer(); // stand-ins for your identity provider and API
const api = await startApiServer({ auth });
{
  await using client = createClient({
    baseURL: api.url,
    auth: { grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
  });
  const item = await client.get<{ id: string; name: string }>('items/42');
  console.log(item.name, `(token requests: ${auth.counts.token})`);
}
await Promise.all([auth.close(), api.close()]);
