import Keyv from 'keyv';
import { ConfigError, StoreUnavailableError } from '../src/errors.js';
import { checkNames, own } from '../src/own.js';
import { type KeyvTokenStoreOptions, keyvStore, type SharedTokenStore } from './keyv.js';
import { importPeer } from './peer.js';
import { type RedisLockOptions, redisLock } from './redis-lock.js';
import { bounded, settlesWithin } from './timeout.js';
import { keyWatchers, withPush } from './watchers.js';

export interface RedisTokenStoreOptions extends KeyvTokenStoreOptions, Omit<RedisLockOptions, 'prefix' | 'namespace'> {
  /** Prefix for every key this store and its lock write, so several apps can share one Redis. @default 'sluice' */
  namespace?: string | undefined;
  /** Wake waiters when a token is written (pub/sub); `false`: waiters poll. @default true */
  push?: boolean | undefined;
}

/**
 * Compare-and-set on Keyv's envelope (`{"value":{..."revision":N},"expires":ms}`), atomic on the server.
 * KEYS[1] key; ARGV: new envelope, expected revision ('' for none), TTL ms, the writer's clock (Keyv
 * decides expiry on the client's clock too).
 */
const SWAP = `
local current = redis.call('GET', KEYS[1])
local revision = false
if current then
  local ok, doc = pcall(cjson.decode, current)
  if ok and type(doc) == 'table' and type(doc.value) == 'table' then
    local expired = type(doc.expires) == 'number' and doc.expires <= tonumber(ARGV[4])
    if not expired and type(doc.value.revision) == 'number' then revision = doc.value.revision end
  end
end
if ARGV[2] == '' then
  if revision then return 0 end
elseif revision ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1`;

/** Reconnects forever with a capped backoff: sharing resumes by itself when Redis is back. */
const reconnectStrategy = (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000);

/**
 * Where Redis is: one URL (Redis, Valkey, a managed endpoint), the root nodes of a Cluster, or the
 * Sentinels that know a named master. Credentials and TLS (`rediss:`) come from the URLs; a Sentinel
 * setup uses the first URL's credentials for the data nodes too.
 */
export type RedisTarget = string | { cluster: readonly string[] } | { sentinels: readonly string[]; name: string };

/** One URL, checked: `redis:` or `rediss:`, with a host. */
function redisURL(url: unknown): URL {
  try {
    const parsed = new URL(String(url));
    if ((parsed.protocol === 'redis:' || parsed.protocol === 'rediss:') && parsed.hostname) return parsed;
  } catch {}
  throw new ConfigError('redisTokenStore: every url must look like redis://host:6379');
}

function checkTarget(target: RedisTarget): string[] {
  if (typeof target === 'string') return [redisURL(target).href];
  if (target === null || typeof target !== 'object')
    throw new ConfigError('redisTokenStore: give a redis:// URL, { cluster: [urls] } or { sentinels: [urls], name }');
  const { cluster, sentinels, name } = target as { cluster?: unknown; sentinels?: unknown; name?: unknown };
  if (Object.hasOwn(target, 'cluster')) {
    checkNames('redisTokenStore target', target, new Set(['cluster']));
    if (!Array.isArray(cluster) || cluster.length === 0)
      throw new ConfigError('redisTokenStore: cluster must list at least one node URL');
    return cluster.map((url) => redisURL(url).href);
  }
  checkNames('redisTokenStore target', target, new Set(['sentinels', 'name']));
  if (!Array.isArray(sentinels) || sentinels.length === 0)
    throw new ConfigError('redisTokenStore: sentinels must list at least one Sentinel URL');
  if (typeof name !== 'string' || name.length === 0)
    throw new ConfigError("redisTokenStore: name must be the Sentinel master's name");
  return sentinels.map((url) => redisURL(url).href);
}

/** What the store needs of a connection, whatever the topology. */
interface Connection {
  /** The client the Keyv adapter takes (a node-redis client, cluster or sentinel). */
  client: object;
  /** Sends one command; `key` routes it to the key's node on a Cluster. */
  send(key: string | undefined, args: string[]): Promise<unknown>;
  isReady(): boolean;
  opening: Promise<unknown>;
  /** Subscribes on a connection of its own (unref'd where node-redis allows it). */
  subscribe(channel: string, listener: (message: string) => void): Promise<() => void>;
  /** Called with a replacement client (Sentinel: node-redis's cannot be reconnected once it gave up). */
  onReplace?(listener: (client: object) => void): void;
  /** Lets the process exit while idle (single URL only: Cluster and Sentinel keep it alive until close()). */
  idle?: { ref(): void; unref(): void };
  close(): Promise<void>;
}

type RedisModule = typeof import('@keyv/redis');

function connect(redis: RedisModule, target: RedisTarget, urls: string[], timeoutMs: number): Connection {
  const socket = { connectTimeout: Math.max(timeoutMs, 1000), reconnectStrategy };
  // Subscriber connections, ended by close() even while they are still trying to connect.
  const subscribers = new Set<{ destroy(): void }>();
  const endSubscribers = () => {
    for (const sub of subscribers) {
      try {
        sub.destroy();
      } catch {
        // Closed already.
      }
    }
    subscribers.clear();
  };
  if (typeof target === 'string') {
    const client = redis.createClient({ url: urls[0]!, socket, disableOfflineQueue: true });
    client.on('error', () => {});
    return {
      client,
      send: (_key, args) => client.sendCommand(args),
      isReady: () => client.isReady,
      opening: client.connect().catch(() => undefined),
      async subscribe(channel, listener) {
        const sub = client.duplicate();
        sub.on('error', () => {});
        sub.unref();
        subscribers.add(sub);
        await sub.connect();
        await sub.subscribe(channel, listener);
        return () => sub.destroy();
      },
      idle: client,
      async close() {
        endSubscribers();
        await closeGracefully(
          client.isReady,
          () => client.sendCommand(['PING']),
          () => client.close(),
          () => client.destroy(),
          // Closed already (a close that began and took too long): at least let the process exit.
          () => client.unref(),
        );
      },
    };
  }
  // Credentials and TLS for every node the Cluster or Sentinel client opens, not only the first one.
  const first = new URL(urls[0]!);
  const credentials = {
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
  };
  const tls = first.protocol === 'rediss:' ? { tls: true as const } : {};
  if (Object.hasOwn(target, 'cluster')) {
    const cluster = redis.createCluster({
      rootNodes: urls.map((url) => ({ url })),
      defaults: { ...credentials, socket: { ...socket, ...tls }, disableOfflineQueue: true },
    });
    cluster.on('error', () => {});
    let open = false;
    let closed = false;
    const connectOnce = () =>
      cluster.connect().then(() => {
        open = true;
      });
    // node-redis gives up after its first failed discovery: a Cluster that is not up when the store is
    // made is tried again until it is, or until close().
    const opening = connectOnce().catch(() => keepTrying(connectOnce, () => closed));
    return {
      client: cluster,
      send: (key, args) => cluster.sendCommand(key, false, args),
      isReady: () => open && cluster.isOpen,
      opening,
      async subscribe(channel, listener) {
        const sub = cluster.duplicate();
        sub.on('error', () => {});
        subscribers.add(sub);
        await sub.connect();
        await sub.subscribe(channel, listener);
        return () => sub.destroy();
      },
      async close() {
        closed = true;
        endSubscribers();
        await closeGracefully(
          open,
          () => cluster.sendCommand(undefined, true, ['PING']),
          () => cluster.close(),
          () => cluster.destroy(),
        );
      },
    };
  }
  const makeSentinel = () => {
    const client = redis.createSentinel({
      name: (target as { name: string }).name,
      sentinelRootNodes: urls.map((url) => {
        const { hostname, port } = new URL(url);
        return { host: hostname, port: Number(port || 26379) };
      }),
      nodeClientOptions: { ...credentials, socket: { ...socket, ...tls }, disableOfflineQueue: true },
      sentinelClientOptions: { ...credentials, socket: { ...socket, ...tls } },
    });
    client.on('error', () => {});
    return client;
  };
  let sentinel = makeSentinel();
  let replaced: ((client: object) => void) | undefined;
  let closed = false;
  // node-redis's Sentinel client gives up for good after its rediscovery rounds (16 by default) and cannot
  // be connected again: a fresh one is made and tried until one connects.
  const replace = () => {
    const old = sentinel;
    sentinel = makeSentinel();
    replaced?.(sentinel);
    void old.destroy().catch(() => {});
    return sentinel.connect();
  };
  const opening = sentinel.connect().catch(() => keepTrying(replace, () => closed));
  return {
    get client() {
      return sentinel;
    },
    onReplace(listener) {
      replaced = listener;
    },
    send: (_key, args) => sentinel.sendCommand(false, args),
    isReady: () => sentinel.isReady,
    opening,
    async subscribe(channel, listener) {
      // Subscribing before the Sentinel client knows its nodes fails; wait for it first.
      await opening;
      const current = sentinel;
      await current.subscribe(channel, listener);
      return () => void current.unsubscribe(channel).catch(() => {});
    },
    async close() {
      closed = true;
      if (!(await settlesWithin(sentinel.close(), 2000))) await sentinel.destroy().catch(() => {});
    },
  };
}

/** Runs `attempt` again after the capped backoff, until it succeeds or `stopped()`; timers never hold the process. */
function keepTrying(attempt: () => Promise<unknown>, stopped: () => boolean, round = 0): void {
  if (stopped()) return;
  setTimeout(() => {
    if (stopped()) return;
    attempt().catch(() => keepTrying(attempt, stopped, round + 1));
  }, reconnectStrategy(round)).unref();
}

/**
 * A connection still trying to connect is dropped at once. A connected one finishes what it sent, if
 * Redis still answers: a PING answered within 2 s means every earlier reply is in (replies come in
 * order), so close() has nothing to wait for. Otherwise the sockets are cut: node-redis can only destroy
 * a client (or a Cluster's node connections) that close() has not begun to close, so close() is never
 * started on a dead link. `stuck` runs when destroy() refuses (a close began and took too long).
 */
async function closeGracefully(
  ready: boolean,
  ping: () => Promise<unknown>,
  close: () => Promise<unknown>,
  destroy: () => void,
  stuck: () => void = () => {},
): Promise<void> {
  let answered = false;
  if (ready)
    await settlesWithin(
      ping().then(() => {
        answered = true;
      }),
      2000,
    );
  if (answered && (await settlesWithin(close(), 2000))) return;
  try {
    destroy();
  } catch {
    stuck();
  }
}

/**
 * One line for a fleet sharing Redis: `auth: { grant, ...redisTokenStore(process.env.REDIS_URL) }`.
 * Tokens go through `@keyv/redis`; the lock is `SET NX PX` on the same connection. While Redis is
 * unreachable, calls fail fast with `StoreUnavailableError` instead of queueing. `target` is a URL, or
 * `{ cluster: [urls] }`, or `{ sentinels: [urls], name }`: every key the store and its lock use is a
 * single key (one hash slot), so each operation is atomic on a Cluster too.
 */
const REDIS_OPTIONS = new Set([
  'namespace',
  'timeoutMs',
  'encryptionKey',
  'shared',
  'commandTimeoutMs',
  'poll',
  'push',
]);

export function redisTokenStore(where: RedisTarget, given: RedisTokenStoreOptions = {}): SharedTokenStore {
  // Own properties only: a polluted Object.prototype must not supply a topology or a master's name.
  const target: RedisTarget =
    typeof where === 'string' || where === null || typeof where !== 'object' ? where : own(where);
  const options = own(given);
  checkNames('redisTokenStore', options, REDIS_OPTIONS);
  const { namespace = 'sluice', timeoutMs = 1000 } = options;
  const urls = checkTarget(target);
  // A script that forgets close() still exits: the connection does not keep the process alive while
  // idle, only while a command (or the wait for the connection) is out.
  let busy = 0;
  let idle: { ref(): void; unref(): void } | undefined;
  // One connection for tokens and lock, opened once, here (loading @keyv/redis, an optional peer), and
  // every call waits for it within its deadline: concurrent first calls must not each try to open it.
  const opened = (async () => {
    const redis = await importPeer('@keyv/redis', () => import('@keyv/redis'), 'redisTokenStore');
    const connection = connect(redis, target, urls, timeoutMs);
    idle = connection.idle;
    if (busy === 0) idle?.unref();
    const adapter = new redis.default(connection.client as never, {
      namespace,
      throwOnErrors: true,
      throwOnConnectError: true,
    });
    connection.onReplace?.((client) => {
      adapter.client = client as never;
    });
    const keyv = new Keyv({ store: adapter, namespace, useKeyPrefix: false });
    const inner = keyvStore(
      keyv,
      { ...options, shared: true },
      {
        rawKey: (key) => `${namespace}::${key}`,
        async swap(rawKey, serialized, expected, ttlMs) {
          const args = [serialized, expected === undefined ? '' : String(expected), String(Math.ceil(ttlMs))];
          const reply = await connection.send(rawKey, ['EVAL', SWAP, '1', rawKey, ...args, String(Date.now())]);
          return Number(reply) === 1;
        },
      },
    );
    return { connection, inner };
  })();
  opened.catch(() => {});
  // Loading the module is not the store being slow: only the network wait counts against the deadline.
  const connected = async () => {
    const open = await opened;
    if (open.connection.isReady()) return open;
    return bounded('redis connect', timeoutMs, async () => {
      await open.connection.opening;
      if (!open.connection.isReady()) throw new StoreUnavailableError('redis is not connected');
      return open;
    });
  };
  const use = async <T>(work: (connection: Awaited<typeof opened>) => Promise<T>): Promise<T> => {
    if (busy++ === 0) idle?.ref();
    try {
      return await work(await connected());
    } finally {
      if (--busy === 0) idle?.unref();
    }
  };
  // Push: every write is announced on `<namespace>:written` (the key, no value), and a subscriber
  // connection, opened by the first watcher and unref'd, wakes that key's waiters. If it is down,
  // waiters poll as before.
  const channel = `${namespace}:written`;
  const announce = (key: string) => {
    void use(({ connection }) => connection.send(undefined, ['PUBLISH', channel, key])).catch(() => {});
  };
  const watchers = keyWatchers();
  let subscriber: Promise<(() => void) | undefined> | undefined;
  const subscribe = () =>
    (subscriber ??= (async () => {
      const { connection } = await opened;
      return connection.subscribe(channel, (key: string) => watchers.notify(key));
    })().catch(() => {
      // Not subscribed (Redis down, or not ready yet): the next watcher tries again; meanwhile waiters poll.
      subscriber = undefined;
      return undefined;
    }));
  const store = withPush(
    {
      shared: true,
      namespace,
      get: (key) => use((connection) => connection.inner.get(key)),
      set: (key, value, ttl) => use((connection) => connection.inner.set(key, value, ttl)),
      delete: (key) => use((connection) => connection.inner.delete(key)),
      atomicSwap: true,
      swap: (key, value, expected, ttl) => use((connection) => connection.inner.swap(key, value, expected, ttl)),
    },
    { announce, listen: () => void subscribe(), watchers, push: options.push },
  );
  // Each lock command names one key: SET/GET carry it first, EVAL after the script and the key count.
  const lock = redisLock(
    {
      sendCommand: (args) => use(({ connection }) => connection.send(args[0] === 'EVAL' ? args[3] : args[1], args)),
    },
    { commandTimeoutMs: options.commandTimeoutMs ?? timeoutMs, poll: options.poll, namespace },
  );
  return {
    store,
    lock,
    async close() {
      // A subscriber that is still connecting is ended by the connection's close, not waited for.
      const unsubscribe = await Promise.race([subscriber, undefined]);
      try {
        unsubscribe?.();
      } catch {
        // Closed already (a second close()).
      }
      const open = await opened.catch(() => undefined);
      await open?.connection.close();
    },
  };
}
