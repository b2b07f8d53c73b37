/**
 * A separate process that takes a lock and keeps it until it is killed or paused: what a worker dying
 * (SIGKILL) or hanging (SIGSTOP) mid-refresh looks like to the others.
 * argv[2]: JSON { kind: 'redis' | 'postgres', url, name, ttlMs, prefix }.
 */
import { createClient } from '@keyv/redis';
import pg from 'pg';
import { postgresLeaseLock, postgresLock, redisLock } from '../../stores/index.js';

const job = JSON.parse(process.argv[2] ?? '{}') as {
  kind: 'redis' | 'postgres' | 'postgres-lease';
  url: string;
  name: string;
  ttlMs: number;
  prefix: string;
};

async function lockFor() {
  if (job.kind === 'postgres') return postgresLock(new pg.Pool({ connectionString: job.url }), { prefix: job.prefix });
  if (job.kind === 'postgres-lease')
    return postgresLeaseLock(new pg.Pool({ connectionString: job.url }), { namespace: job.prefix });
  const client = createClient({ url: job.url });
  await client.connect();
  return redisLock(client, { prefix: job.prefix });
}

const lock = await lockFor();
const handle = await lock.acquire(job.name, { ttlMs: job.ttlMs, waitMs: 5000 });
process.send?.({ held: handle !== undefined });
setInterval(() => {}, 60_000);
