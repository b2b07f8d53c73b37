/**
 * A script that forgets `close()`: a client with a shared store (argv[2]: 'redis' | 'postgres') makes one
 * call to argv[3] and ends. It must exit by itself once nothing else is pending.
 */
import { createClient, staticToken } from '../../src/index.js';
import { postgresTokenStore, redisTokenStore } from '../../stores/index.js';
import { POSTGRES_URL, REDIS_URL } from './services.js';

const [engine = 'redis', url = ''] = process.argv.slice(2);
const namespace = `forget-${process.pid}`;
const shared =
  engine === 'redis' ? redisTokenStore(REDIS_URL, { namespace }) : postgresTokenStore(POSTGRES_URL, { namespace });
const client = createClient({ baseURL: url, auth: { grant: staticToken('t') } });
await shared.store.set('k', { revision: 1 }, 10_000);
await shared.store.get('k');
await client.get('x');
console.log('done');
