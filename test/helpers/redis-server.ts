import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { promisify } from 'node:util';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitFor(port: number, up: boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const reachable = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (reachable === up) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis on ${port} did not come ${up ? 'up' : 'down'} within ${ms} ms`);
}

/** A private redis-server on an ephemeral loopback port that a test may stop and start again. */
export async function startPrivateRedis() {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    await waitFor(port, true);
  };
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
    await waitFor(port, false);
  };
  /** Runs one command on it (redis-cli), e.g. to make it refuse writes or to flush it. */
  const command = async (...args: string[]) =>
    (await promisify(execFile)('redis-cli', ['-p', String(port), ...args])).stdout.trim();
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, start, stop, command };
}
