import { createConnection } from 'node:net';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const POSTGRES_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether a server a test needs is up. In CI (`CI=true`) a missing server is a failure, never a skip;
 * on a laptop without it the suite says so and skips.
 */
export async function needs(name: 'redis' | 'postgres'): Promise<boolean> {
  const url = name === 'redis' ? REDIS_URL : POSTGRES_URL;
  if (await reachable(url)) return true;
  if (process.env.CI === 'true') throw new Error(`${name} is required in CI but ${new URL(url).host} is not reachable`);
  console.warn(`skipping ${name} tests: ${new URL(url).host} is not reachable`);
  return false;
}
