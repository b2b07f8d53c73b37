import { type ChildProcess, fork } from 'node:child_process';
import type { FleetJob, FleetReport } from './fleet-worker.js';

export interface Fleet {
  /** Resolves once every worker has had a good response. */
  ready: Promise<void>;
  workers: ChildProcess[];
  /** Asks every live worker to stop and collects the reports of those that answer. */
  stop(): Promise<FleetReport[]>;
  kill(index: number): void;
  /** Tells worker `index` to refresh now, arming its `fault`. */
  kick(index: number): void;
}

/** Forks one worker process per job; each ends by itself after `maxSeconds` at the latest. */
export function startFleet(jobs: FleetJob[]): Fleet {
  const workers = jobs.map((job) =>
    fork(new URL('./fleet-worker.ts', import.meta.url), [JSON.stringify(job)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const killed = new Set<number>();
  const reports = workers.map(
    (worker) =>
      new Promise<FleetReport | undefined>((resolve) => {
        worker.on('message', (message) => {
          if (message && typeof message === 'object' && 'report' in message)
            resolve((message as { report: FleetReport }).report);
        });
        // 'close', not 'exit': 'exit' can arrive before the last IPC message (the report) is read.
        worker.once('close', () => resolve(undefined));
      }),
  );
  const ready = Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve, reject) => {
          worker.on('message', (message) => {
            if (message === 'ready') resolve();
          });
          worker.once('exit', (code) => reject(new Error(`fleet worker exited early with ${code}`)));
        }),
    ),
  ).then(() => undefined);
  return {
    ready,
    workers,
    kick(index) {
      workers[index]?.send('kick');
    },
    kill(index) {
      killed.add(index);
      workers[index]?.kill('SIGKILL');
    },
    async stop() {
      workers.forEach((worker, index) => {
        if (!killed.has(index) && worker.connected) worker.send('stop');
      });
      const all = await Promise.all(reports);
      return all.filter((report): report is FleetReport => report !== undefined);
    },
  };
}
