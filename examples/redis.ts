/** Two clients (two processes in real life) share one token through Redis. `npx tsx examples/redis.ts` */
import { clientCredentials, createClient } from 'sluice';
import { redisTokenStore } from 'sluice/stores';
import { startApiServer, startAuthServer } from 'sluice/testing';

const auth = await startAuthServer();
const api = await startApiServer({ auth });
const grant = clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' });
const namespace = `example-${process.pid}`;
{
  await using one = createClient({
    baseURL: api.url,
    auth: { grant, ...redisTokenStore(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { namespace }) },
  });
  await using two = createClient({
    baseURL: api.url,
    auth: { grant, ...redisTokenStore(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { namespace }) },
  });
  await Promise.all([one.get('whoami'), two.get('whoami')]);
  console.log(`2 clients, ${auth.counts.token} token request`);
}
await Promise.all([auth.close(), api.close()]);
