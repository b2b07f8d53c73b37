/**
 * An API behind a Kong gateway: the gateway wants its API key (`apikey` header), the service behind it an
 * OAuth bearer token. Two auth layers in one client. A refusal names its scheme (`WWW-Authenticate: Key`
 * from the gateway, `Bearer` from the service), so only the service's refusal gets a new token; a gateway
 * refusal is an `UnauthorizedError` carrying Kong's message, and costs no token request.
 * Run it against a local mock: `npx tsx examples/recipes/kong.ts`.
 */
import { apiKey, clientCredentials, createClient, UnauthorizedError } from 'sluice';
import { isMain } from './run.js';

export interface KongSetup {
  gatewayURL: string;
  gatewayKey: string;
  tokenURL: string;
  clientId: string;
  clientSecret: string;
}

export function ordersClient(setup: KongSetup) {
  return createClient({
    baseURL: setup.gatewayURL,
    auth: [
      { grant: apiKey(setup.gatewayKey, { header: 'apikey' }) },
      {
        grant: clientCredentials({
          tokenURL: setup.tokenURL,
          clientId: setup.clientId,
          clientSecret: setup.clientSecret,
        }),
      },
    ],
  });
}

// ---- run it against the local mock ----
if (isMain(import.meta.url)) {
  const { startKongGateway } = await import('./mocks/kong.js');
  const kong = await startKongGateway();
  const setup = { gatewayURL: kong.url, gatewayKey: 'kong-key', ...kong };
  await using api = ordersClient(setup);
  console.log('orders:', await api.get('orders'));
  kong.revokeTokens(); // the service refuses the bearer: one new token, the call succeeds
  console.log('after a revocation:', await api.get('orders'));
  kong.rotateApiKey('kong-key-2'); // the gateway refuses the key: an error, no token request
  await api.get('orders').catch((error: unknown) => {
    if (error instanceof UnauthorizedError) console.log('gateway:', error.body);
  });
  console.log(`token requests ${kong.tokenRequests}`);
  await kong.close();
}
