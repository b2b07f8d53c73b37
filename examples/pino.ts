/** Logs through pino: one structured line per attempt and per new token, secrets redacted. `npx tsx examples/pino.ts` */
import pino from 'pino';
import { clientCredentials, createClient } from 'sluice';
import { startApiServer, startAuthServer } from 'sluice/testing';

const auth = await startAuthServer();
const api = await startApiServer({ auth });
{
  await using client = createClient({
    baseURL: api.url,
    logger: pino(),
    auth: { grant: clientCredentials({ tokenURL: auth.tokenURL, clientId: 'app', clientSecret: 'app-secret' }) },
  });
  await client.get('items/1?api_key=not-logged');
}
await Promise.all([auth.close(), api.close()]);
