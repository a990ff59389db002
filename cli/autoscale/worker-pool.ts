/**
 * The workers of one role that an autoscaler runs, started and stopped by a launcher: local
 * `stagegate worker` processes (`processLauncher`), or job workers inside this process
 * (`inProcessLauncher`, for tests and the benchmark). A worker told to stop finishes the jobs
 * in hand first; until it has, it counts as stopping, not running, and takes no new job.
 */
import type { RunningWorker } from '../../core/bus/job-worker.js';
import type { AgentRole } from '../../core/bus/messages.js';
import { StagegateError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Child, ProcessGroup } from '../process-group.js';

export interface WorkerLauncher<H> {
  /** Starts worker number `index`; resolves once it takes jobs. `exited` is called if it stops on its own. */
  start(index: number, exited: () => void): Promise<H>;
  /** Asks the worker to finish its jobs in hand and stop; resolves once it has. */
  stop(handle: H): Promise<void>;
}

export interface WorkerPool {
  readonly role: AgentRole;
  /** Workers taking jobs. */
  running(): number;
  /** Workers finishing their jobs in hand after being told to stop. */
  stopping(): number;
  /** Starts or stops workers until `running()` is `n`. Starting is awaited, stopping is not. */
  scaleTo(n: number): Promise<void>;
  /** Stops every worker and waits until all have. */
  stopAll(): Promise<void>;
}

export function createWorkerPool<H>(role: AgentRole, launcher: WorkerLauncher<H>, log: Logger): WorkerPool {
  const live: Array<{ handle: H; index: number }> = [];
  const stopping = new Set<Promise<void>>();
  let nextIndex = 1;

  async function startOne(): Promise<void> {
    const index = nextIndex++;
    // Filled once started; the exit callback may run before that.
    const slot: { entry?: { handle: H; index: number }; exitedEarly?: boolean } = {};
    const handle = await launcher.start(index, () => {
      if (slot.entry === undefined) {
        slot.exitedEarly = true;
        return;
      }
      const at = live.indexOf(slot.entry);
      if (at < 0) return;
      live.splice(at, 1);
      log.warn({ role, worker: index }, 'worker exited on its own; the autoscaler will replace it');
    });
    if (slot.exitedEarly === true) throw new StagegateError('COMMAND_FAILED', `${role} worker ${index} exited as it started`);
    slot.entry = { handle, index };
    live.push(slot.entry);
  }

  function stopOne(entry: { handle: H; index: number }) {
    const done: Promise<void> = launcher
      .stop(entry.handle)
      .catch((err: unknown) => log.error({ role, worker: entry.index, err: errorMessage(err) }, 'stopping a worker failed'))
      .finally(() => stopping.delete(done));
    stopping.add(done);
  }

  return {
    role,
    running: () => live.length,
    stopping: () => stopping.size,
    async scaleTo(n) {
      for (let extra = live.length - n; extra > 0; extra--) stopOne(live.pop() as { handle: H; index: number });
      const missing = n - live.length;
      if (missing <= 0) return;
      const results = await Promise.allSettled(Array.from({ length: missing }, () => startOne()));
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [errorMessage(r.reason)] : []));
      if (failures.length > 0) {
        throw new StagegateError('COMMAND_FAILED', `${failures.length} of ${missing} ${role} workers did not start: ${failures.join('; ')}`);
      }
    },
    async stopAll() {
      while (live.length > 0) stopOne(live.pop() as { handle: H; index: number });
      await Promise.all([...stopping]);
    },
  };
}

/** `stagegate worker <role> --concurrency <jobsPerWorker>` processes of the group. */
export function processLauncher(group: ProcessGroup, role: AgentRole, jobsPerWorker: number): WorkerLauncher<Child> {
  return {
    async start(index, exited) {
      const child = await group.start(`${role}-${index}`, ['worker', role, '--concurrency', String(jobsPerWorker)]);
      if (child.process.exitCode !== null || child.process.signalCode !== null) exited();
      else child.process.once('exit', exited);
      return child;
    },
    stop: (child) => group.stop(child),
  };
}

/** Job workers in this process (tests, the benchmark): `start` is `startJobWorker` with its options. */
export function inProcessLauncher(start: () => Promise<RunningWorker>): WorkerLauncher<RunningWorker> {
  return { start: () => start(), stop: (worker) => worker.stop() };
}
