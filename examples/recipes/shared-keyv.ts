/**
 * Tokens in the cache you already run (the Django-cache pattern): hand Sluice your own Keyv. Whatever its
 * namespace or `useKeyPrefix`, Sluice keeps its entries under `<namespace>::sluice:token:<hash>` (one
 * prefix), so every service on this Redis and namespace, whether it uses a Keyv of its own or
 * `redisTokenStore(url, { namespace })`, shares one token and takes turns refreshing it; `keyvRedisLock`
 * locks on the cache's own connection, in the same namespace.
 * Run it against local servers and the Redis on 127.0.0.1:6379: `npx tsx examples/recipes/shared-keyv.ts`.
 */
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import { clientCredentials, createClient } from 'sluice';
import { keyvRedisLock, keyvTokenStore } from 'sluice/stores';
import { isMain } from './run.js';

export function cacheBackedClient(apiURL: string, cache: Keyv, grant: ReturnType<typeof clientCredentials>) {
  return createClient({
    baseURL: apiURL,
    auth: { grant, store: keyvTokenStore(cache), lock: keyvRedisLock(cache) },
  });
}

// ---- run it against local servers ----
if (isMain(import.meta.url)) {
  const { startApiServer, startAuthServer } = await import('sluice/testing');
  const auth = await startAuthServer();
  const api = await startApiServer({ auth });
  const grant = clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
  const namespace = `recipe-${process.pid}`;
  // Two services, each with its own cache connection, as two processes would have.
  const caches = [1, 2].map(() => new Keyv({ store: new KeyvRedis('redis://127.0.0.1:6379'), namespace }));
  const clients = caches.map((cache) => cacheBackedClient(api.url, cache, grant));
  await Promise.all(clients.map((client) => client.get('whoami')));
  console.log(`2 services, ${auth.counts.token} token request`);
  for (const client of clients) await client.close();
  for (const cache of caches) await cache.disconnect();
  await Promise.all([auth.close(), api.close()]);
}
