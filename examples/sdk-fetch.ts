/** An SDK that takes a custom fetch (ky here) runs on Sluice's chain: tokens, retries, redaction. `npx tsx examples/sdk-fetch.ts` */
import ky from 'ky';
import { clientCredentials, createFetch } from 'sluice';
import { startApiServer, startAuthServer } from 'sluice/testing';

const auth = await startAuthServer();
const api = await startApiServer({ auth });
const fetch = createFetch({
  // No baseURL: the SDK builds absolute URLs, so name the origins that may receive the token.
  auth: {
    grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }),
    origins: [api.url],
  },
});
const sdk = ky.create({ prefixUrl: api.url, fetch, retry: 0 }); // Sluice retries; the SDK need not
console.log(await sdk.get('items/7').json());
await fetch.close();
await Promise.all([auth.close(), api.close()]);
