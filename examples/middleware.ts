/** Your middleware, and where it sits: first it sees each call once; last it sees every wire attempt. `npx tsx examples/middleware.ts` */
import { clientCredentials, createClient, type Middleware } from 'sluice';
import { startApiServer, startAuthServer } from 'sluice/testing';

const auth = await startAuthServer();
const api = await startApiServer({ auth });
api.inject({ status: 503 }); // one retry, to show the difference

const perCall: Middleware = async (request, next) => {
  const response = await next(request.withHeader('x-team', 'billing'));
  console.log(`call: ${request.method} ${response.status}, credential seen: ${request.headers.has('authorization')}`);
  return response;
};
const perAttempt: Middleware = async (request, next) => {
  const response = await next(request);
  console.log(`  attempt: ${response.status}, credential seen: ${request.headers.has('authorization')}`);
  return response;
};
{
  await using client = createClient({
    baseURL: api.url,
    retry: { baseDelay: 10 },
    auth: { grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
    middleware: (defaults) => [perCall, ...defaults, perAttempt],
  });
  await client.get('items/1');
}
await Promise.all([auth.close(), api.close()]);
