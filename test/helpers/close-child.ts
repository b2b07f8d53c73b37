/**
 * A process that opens a shared store, writes once, then on `close` closes it and reports how long
 * that took. It must then exit by itself: a handle left open would keep it alive.
 * argv[2]: JSON { engine: 'redis' | 'postgres', url }.
 */
import { postgresTokenStore, redisTokenStore } from '../../stores/index.js';

const { engine, url } = JSON.parse(process.argv[2] ?? '{}') as { engine: 'redis' | 'postgres'; url: string };
const shared =
  engine === 'redis'
    ? redisTokenStore(url, { namespace: `close-${process.pid}`, timeoutMs: 300 })
    : postgresTokenStore(url, { namespace: `close-${process.pid}`, timeoutMs: 300 });
await shared.store.set('k', { revision: 1 }, 10_000);
process.send?.('ready');
process.once('message', async () => {
  // A call in flight when the server stops answering: its reply never comes.
  void shared.store.get('k').catch(() => {});
  await new Promise((resolve) => setTimeout(resolve, 100));
  const started = Date.now();
  await shared.close();
  process.send?.({ closedMs: Date.now() - started });
  // Nothing else is pending: with no handle left open, the process ends here.
  process.disconnect?.();
});
