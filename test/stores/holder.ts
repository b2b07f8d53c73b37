/** Starts lock-holder.ts in a child process and waits until it holds the lock. */
import { type ChildProcess, fork } from 'node:child_process';

export interface Holder {
  child: ChildProcess;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
}

export async function holdInChild(job: {
  kind: 'redis' | 'postgres' | 'postgres-lease';
  url: string;
  name: string;
  ttlMs: number;
  prefix: string;
}): Promise<Holder> {
  const child = fork(new URL('./lock-holder.ts', import.meta.url), [JSON.stringify(job)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const held = await new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the lock holder did not start within 10 s')), 10_000);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve((message as { held?: boolean }).held === true);
    });
    child.once('exit', () => reject(new Error('the lock holder exited before holding the lock')));
  });
  if (!held) {
    child.kill('SIGKILL');
    throw new Error('the lock holder could not take the lock');
  }
  return {
    child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
