/**
 * A PgBouncer in transaction pooling in front of the test PostgreSQL, started by the test as a child
 * process (not a daemon) on an ephemeral port of 127.0.0.1, and stopped by its PID.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { POSTGRES_URL } from './services.js';

export interface PgBouncer {
  /** `postgres://` URL of the test database through PgBouncer. */
  url: string;
  /** Server connections PgBouncer keeps to PostgreSQL, at most. */
  poolSize: number;
  stop(): Promise<void>;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

function binary(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v pgbouncer || ls /usr/sbin/pgbouncer'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

/** True when pgbouncer is installed; in CI a missing one is a failure (.ci/run installs it). */
export function hasPgBouncer(): boolean {
  if (binary()) return true;
  if (process.env.CI === 'true') throw new Error('pgbouncer is required in CI (.ci/run installs it from Debian)');
  console.warn('skipping PgBouncer tests: pgbouncer is not installed (apt-get install pgbouncer)');
  return false;
}

export async function startPgBouncer(poolSize = 4): Promise<PgBouncer> {
  const target = new URL(POSTGRES_URL);
  const user = decodeURIComponent(target.username) || 'postgres';
  const database = target.pathname.slice(1) || 'test';
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pgbouncer-'));
  // PgBouncer will not run as root: it drops to the postgres user, who must read these files.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(join(dir, 'users.txt'), `"${user}" ""\n`, { mode: 0o644 });
  writeFileSync(
    ini,
    [
      '[databases]',
      `${database} = host=${target.hostname} port=${target.port || 5432} dbname=${database}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 500',
      'ignore_startup_parameters = extra_float_digits,application_name',
      'server_reset_query =',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', ini] : [ini];
  const child: ChildProcess = spawn(binary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const url = `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`;
  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready once a query goes through.
  const until = Date.now() + 10_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return { url, poolSize, stop };
    } catch (error) {
      await client.end().catch(() => {});
      if (child.exitCode !== null || Date.now() > until) {
        await stop();
        throw new Error(`pgbouncer did not start: ${(error as Error).message}\n${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
