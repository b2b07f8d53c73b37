import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RedisAddress {
  host: string;
  port: number;
}

export interface RedisCluster {
  nodes: RedisAddress[];
  /** redis://127.0.0.1:<first node's port> */
  url: string;
  stop(): Promise<void>;
}

export interface RedisSentinel {
  /** The monitored master's name, 'sluice-master'. */
  name: string;
  /** The master at start. */
  master: RedisAddress;
  /** The replica at start. */
  replica: RedisAddress;
  sentinels: RedisAddress[];
  /** The master as the first sentinel reports it. */
  currentMaster(): Promise<RedisAddress>;
  /**
   * Runs SENTINEL FAILOVER once the replica has caught up; resolves with the new master once all sentinels
   * report it and it answers ROLE as master. The old master still answers as a master for ~9 s more, until
   * the sentinels demote it, so a second failover() right after the first one takes ~11 s.
   */
  failover(): Promise<RedisAddress>;
  stop(): Promise<void>;
}

const host = '127.0.0.1';
const sentinelName = 'sluice-master';
const startupMs = 15_000;

/** Thrown when a server could not bind its port; startup is retried once. */
class PortTaken extends Error {}

// Children that may still run and their temp dirs; SIGKILLed and removed if this process ends without stop().
const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHooked = false;

function killLive(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', killLive);
  // Vitest ends its fork workers with SIGTERM, which skips 'exit' handlers.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killLive();
      // Keep the default (die of the signal) unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

function run(file: string, args: string[], timeout = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout.replace(/\r/g, '').trim());
    });
  });
}

/** Runs one command against a server on 127.0.0.1 with redis-cli; error replies come back as text. */
function cli(port: number, ...args: string[]): Promise<string> {
  return run('redis-cli', ['-h', host, '-p', String(port), ...args], 2000);
}

let binariesChecked = false;

async function checkBinaries(): Promise<void> {
  if (binariesChecked) return;
  for (const binary of ['redis-server', 'redis-cli']) {
    try {
      await run(binary, ['--version']);
    } catch (error) {
      throw new Error(
        `${binary} is not installed or not on PATH; the Redis topology tests need it (Debian: apt-get install redis-server)`,
        { cause: error },
      );
    }
  }
  binariesChecked = true;
}

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, host, () => resolve(server));
  });
}

/** Distinct free loopback ports; with `bus`, port + 10000 is free too (cluster bus). */
async function freePorts(count: number, bus: boolean): Promise<number[]> {
  const held: Server[] = [];
  const ports: number[] = [];
  try {
    for (let tries = 0; ports.length < count; tries++) {
      if (tries > 200) throw new Error('could not find free ports for redis');
      const server = await listen(0);
      if (!server) continue;
      held.push(server);
      const { port } = server.address() as { port: number };
      if (!bus) {
        ports.push(port);
        continue;
      }
      if (port + 10000 >= 65536) continue;
      const busServer = await listen(port + 10000);
      if (!busServer) continue;
      held.push(busServer);
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

interface Spawned {
  port: number;
  child: ChildProcess;
  output: () => string;
}

/** A temp dir plus the servers spawned into it, all stopped together. */
function createGroup(prefix: string) {
  hookExit();
  const dir = mkdtempSync(join(tmpdir(), `sluice-${prefix}-`));
  liveDirs.add(dir);
  const servers: Spawned[] = [];
  let stopped = false;

  const spawnServer = (port: number, args: string[]): Spawned => {
    // Log to a file, not a pipe, and unref: a forgotten server does not keep this process alive.
    const logFile = join(dir, `redis-${port}.log`);
    const log = openSync(logFile, 'w');
    const child = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', log, log] });
    closeSync(log);
    child.unref();
    let failure = '';
    child.on('error', (error) => {
      failure = `spawn failed: ${error.message}\n`;
    });
    const output = () => {
      try {
        return failure + readFileSync(logFile, 'utf8').slice(-4000);
      } catch {
        return failure;
      }
    };
    live.add(child);
    child.once('exit', () => live.delete(child));
    const server = { port, child, output };
    servers.push(server);
    return server;
  };

  /** Waits until the server answers; fails fast when it exits. */
  const waitUp = async (server: Spawned, deadline: number): Promise<void> => {
    while (true) {
      if (server.child.exitCode !== null || server.child.signalCode !== null || server.child.pid === undefined) {
        const output = server.output();
        const message = `redis-server on port ${server.port} exited during startup:\n${output}`;
        throw output.includes('Address already in use') ? new PortTaken(message) : new Error(message);
      }
      // Check the pid: another server may have taken the port in between.
      const info = await cli(server.port, 'INFO', 'server').catch(() => '');
      if (info.includes(`process_id:${server.child.pid}\n`)) return;
      if (Date.now() > deadline)
        throw new Error(`redis-server on port ${server.port} did not start:\n${server.output()}`);
      await sleep(50);
    }
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(servers.map(({ child }) => kill(child)));
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };

  return { dir, spawnServer, waitUp, stop };
}

/** SIGTERM, then SIGKILL after 2 s; resolves once the child has exited. */
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

/** Polls `check` until it returns a value; throws `what` with the last observation after the deadline. */
async function poll<T>(what: string, deadline: number, check: () => Promise<T | undefined>): Promise<T> {
  let last: unknown;
  while (true) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} (gave up after ${startupMs} ms)${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await sleep(100);
  }
}

/** Starts once, retrying once when a port was taken in between choosing and binding it. */
async function retryOnPortTaken<T>(start: () => Promise<T>): Promise<T> {
  await checkBinaries();
  try {
    return await start();
  } catch (error) {
    if (!(error instanceof PortTaken)) throw error;
    return start();
  }
}

/** A local Redis Cluster of `masters` (at least 3) masters and no replicas on 127.0.0.1. */
export async function startRedisCluster(options: { masters?: number } = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  if (masters < 3) throw new Error('redis-cli --cluster create needs at least 3 masters');
  return retryOnPortTaken(() => startClusterOnce(masters));
}

async function startClusterOnce(masters: number): Promise<RedisCluster> {
  const deadline = Date.now() + startupMs;
  const ports = await freePorts(masters, true);
  const group = createGroup('cluster');
  try {
    const servers = ports.map((port) =>
      group.spawnServer(port, [
        ...['--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no'],
        ...['--cluster-enabled', 'yes', '--cluster-config-file', join(group.dir, `nodes-${port}.conf`)],
        ...['--dir', group.dir, '--cluster-node-timeout', '2000'],
      ]),
    );
    for (const server of servers) await group.waitUp(server, deadline);
    await run(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((port) => `${host}:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
      startupMs,
    );
    for (const port of ports) {
      await poll(`cluster node ${port} did not reach cluster_state:ok`, deadline, async () =>
        (await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok') ? true : undefined,
      );
    }
    return {
      nodes: ports.map((port) => ({ host, port })),
      url: `redis://${host}:${ports[0]}`,
      stop: group.stop,
    };
  } catch (error) {
    await group.stop();
    throw error;
  }
}

/** Flat key/value reply lines (as redis-cli prints them) split into records, one per `name` key. */
function records(text: string): Record<string, string>[] {
  const lines = text.split('\n');
  const result: Record<string, string>[] = [];
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const key = lines[i]!;
    if (key === 'name' || result.length === 0) result.push({});
    result[result.length - 1]![key] = lines[i + 1]!;
  }
  return result;
}

async function masterAddress(sentinelPort: number): Promise<RedisAddress> {
  const [ip, port] = (await cli(sentinelPort, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', sentinelName)).split('\n');
  if (!ip || !port || !/^\d+$/.test(port)) throw new Error(`sentinel ${sentinelPort} does not know the master`);
  return { host: ip, port: Number(port) };
}

/** The replica's address if `master` has one online replica whose offset caught up. */
async function syncedReplica(master: RedisAddress): Promise<RedisAddress | undefined> {
  const info = await cli(master.port, 'INFO', 'replication');
  const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
  const slave = /slave0:ip=([^,]+),port=(\d+),state=online,offset=(\d+)/.exec(info);
  if (!slave || slave[3] !== offset) return undefined;
  return { host: slave[1]!, port: Number(slave[2]) };
}

/** True when the sentinel sees `master` up, `replica` as a healthy replica, and the other sentinels. */
async function sentinelReady(
  sentinelPort: number,
  master: RedisAddress,
  replica: RedisAddress,
  sentinels: number,
): Promise<boolean> {
  const [info] = records(await cli(sentinelPort, 'SENTINEL', 'MASTER', sentinelName));
  if (!info || info.ip !== master.host || info.port !== String(master.port) || info.flags !== 'master') return false;
  if (info['num-other-sentinels'] !== String(sentinels - 1)) return false;
  const replicas = records(await cli(sentinelPort, 'SENTINEL', 'REPLICAS', sentinelName));
  return replicas.some(
    (r) =>
      r.ip === replica.host &&
      r.port === String(replica.port) &&
      r.flags === 'slave' &&
      r['master-link-status'] === 'ok',
  );
}

/** One master, one replica and three sentinels (quorum 2) on 127.0.0.1. */
export function startRedisSentinel(): Promise<RedisSentinel> {
  return retryOnPortTaken(startSentinelOnce);
}

async function startSentinelOnce(): Promise<RedisSentinel> {
  const deadline = Date.now() + startupMs;
  const [masterPort, replicaPort, ...sentinelPorts] = (await freePorts(5, false)) as [number, number, ...number[]];
  const group = createGroup('sentinel');
  // Diskless sync without the default 5 s delay, so replicas sync at once (also after a failover).
  const data = (port: number) => [
    ...['--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no', '--dir', group.dir],
    ...['--repl-diskless-sync-delay', '0'],
  ];
  try {
    const master = { host, port: masterPort };
    const replica = { host, port: replicaPort };
    await group.waitUp(group.spawnServer(masterPort, data(masterPort)), deadline);
    await group.waitUp(
      group.spawnServer(replicaPort, [...data(replicaPort), '--replicaof', host, String(masterPort)]),
      deadline,
    );
    await poll('the replica did not get in sync with the master', deadline, () => syncedReplica(master));
    // Sentinels start after the sync, so their first INFO of the master already lists the replica.
    const sentinels = sentinelPorts.map((port) => {
      const conf = join(group.dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          `bind ${host}`,
          `dir ${group.dir}`,
          `sentinel monitor ${sentinelName} ${host} ${masterPort} 2`,
          `sentinel down-after-milliseconds ${sentinelName} 1000`,
          `sentinel failover-timeout ${sentinelName} 5000`,
          '',
        ].join('\n'),
      );
      return group.spawnServer(port, [conf, '--sentinel']);
    });
    for (const sentinel of sentinels) await group.waitUp(sentinel, deadline);
    for (const port of sentinelPorts) {
      await poll(`sentinel ${port} did not see the master, the replica and the other sentinels`, deadline, async () =>
        (await sentinelReady(port, master, replica, sentinelPorts.length)) ? true : undefined,
      );
    }

    const currentMaster = () => masterAddress(sentinelPorts[0]!);
    const failover = async (): Promise<RedisAddress> => {
      const before = await currentMaster();
      // Wait for a caught-up replica, so nothing written before is lost. Right after a failover that
      // takes ~10 s: the sentinels demote the old master only 8 s after it still claims to be master.
      await poll('no replica in sync before the failover', Date.now() + startupMs, () => syncedReplica(before));
      const until = Date.now() + startupMs;
      await poll('SENTINEL FAILOVER was refused', until, async () => {
        const reply = await cli(sentinelPorts[0]!, 'SENTINEL', 'FAILOVER', sentinelName);
        if (reply !== 'OK') throw new Error(reply); // e.g. NOGOODSLAVE while a previous failover settles
        return true;
      });
      return poll('the sentinels did not agree on a new master', until, async () => {
        const seen = await Promise.all(sentinelPorts.map(masterAddress));
        const next = seen[0]!;
        if (next.port === before.port) return undefined;
        if (seen.some((address) => address.host !== next.host || address.port !== next.port)) return undefined;
        const role = (await cli(next.port, 'ROLE')).split('\n')[0];
        return role === 'master' ? next : undefined;
      });
    };

    return {
      name: sentinelName,
      master,
      replica,
      sentinels: sentinelPorts.map((port) => ({ host, port })),
      currentMaster,
      failover,
      stop: group.stop,
    };
  } catch (error) {
    await group.stop();
    throw error;
  }
}
