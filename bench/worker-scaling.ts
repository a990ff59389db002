/**
 * Throughput and parallel efficiency as workers are added: every agent takes 200 ms a job (a
 * simulated model call), gates auto-approve, one orchestrator. At N workers per role, N × 10
 * tasks are submitted at once and drained; each level keeps the workers of the one before and
 * adds to them. Parallel efficiency at N is throughput(N) / (N × throughput(1)): 1 when N
 * workers do N times the work, less for whatever the orchestration adds under load.
 */
import { connectBus } from '../core/bus/connect.js';
import type { RunningWorker } from '../core/bus/job-worker.js';
import { AgentRole } from '../core/bus/messages.js';
import { ensureTopology } from '../core/bus/topology.js';
import { startOrchestrator } from '../orchestrator/orchestrator.js';
import { createTaskClient } from '../orchestrator/task-client.js';
import { drainTasks, startSimulatedWorker, type Drain } from './simulated-agents.js';
import { formatMs, type BenchContext, type Suite, type SuiteReport } from './suite.js';
import { TaskTimelines } from './task-timelines.js';

const JOB_MS = 200;
const LEVELS = [1, 2, 4, 8] as const;
const TASKS_PER_WORKER = 10;
const EFFICIENCY_TARGET = 0.85;
const STAGES = AgentRole.options.length;

export const workerScalingSuite: Suite = {
  id: 'workerScaling',
  title: `workers per role, agents taking ${JOB_MS} ms a job`,
  run: measureWorkerScaling,
};

interface LevelResult extends Drain {
  workersPerRole: number;
  tasksPerSecond: number;
  /** The drain time with no overhead at all: N workers per stage, stages pipelined. */
  idealMs: number;
}

async function measureWorkerScaling(ctx: BenchContext): Promise<SuiteReport> {
  const connect = (name: string) => connectBus(ctx.natsUrl, `bench-scaling-${name}`);
  const [ncOrchestrator, ncAgents, ncClient] = await Promise.all([connect('orchestrator'), connect('agents'), connect('client')]);
  const connections = [ncOrchestrator, ncAgents, ncClient];
  const timelines = new TaskTimelines();
  const taps = timelines.tap(ncClient);
  const workers: RunningWorker[] = [];
  let orchestrator: { stop(): Promise<void> } | undefined;
  try {
    await ensureTopology(ncOrchestrator, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
    orchestrator = await startOrchestrator({ nc: ncOrchestrator, log: ctx.log });
    const client = await createTaskClient(ncClient);
    const results: LevelResult[] = [];
    for (const n of LEVELS) {
      const adding = n - workers.length / STAGES;
      for (const role of AgentRole.options) {
        for (let i = 0; i < adding; i++) workers.push(await startSimulatedWorker(ncAgents, role, JOB_MS, ctx.log));
      }
      // A few tasks first, so the JIT has settled before the first measured level.
      if (n === 1) await drainTasks(client, timelines, 2, 30_000);
      const tasks = n * TASKS_PER_WORKER;
      const drain = await drainTasks(client, timelines, tasks, 60_000);
      results.push({
        ...drain,
        workersPerRole: n,
        tasksPerSecond: drain.elapsedMs === 0 ? 0 : (drain.done / drain.elapsedMs) * 1000,
        idealMs: (tasks / n + STAGES - 1) * JOB_MS,
      });
      if (drain.done < drain.tasks) break;
    }
    return report(results);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await orchestrator?.stop();
    for (const sub of taps) sub.unsubscribe();
    await Promise.all(connections.map((nc) => nc.drain()));
  }
}

function report(results: LevelResult[]): SuiteReport {
  const base = results.find((r) => r.workersPerRole === 1);
  const efficiencyOf = (r: LevelResult) => (base === undefined || base.tasksPerSecond === 0 ? Number.NaN : r.tasksPerSecond / (r.workersPerRole * base.tasksPerSecond));
  const levels = results.map((r) => ({
    workersPerRole: r.workersPerRole,
    tasks: r.tasks,
    done: r.done,
    drainMs: Math.round(r.elapsedMs),
    idealMs: r.idealMs,
    tasksPerSecond: Math.round(r.tasksPerSecond * 100) / 100,
    parallelEfficiency: Math.round(efficiencyOf(r) * 1000) / 1000,
    ofIdeal: Math.round((r.idealMs / r.elapsedMs) * 1000) / 1000,
  }));
  const top = levels.find((l) => l.workersPerRole === 8);
  return {
    rows: levels.map((l) => ({
      metric: `${l.workersPerRole} worker${l.workersPerRole === 1 ? '' : 's'} per role, ${l.tasks} tasks`,
      value: `${l.tasksPerSecond.toFixed(2)} tasks/s, efficiency ${l.parallelEfficiency.toFixed(3)}  (drained in ${formatMs(l.drainMs)}, ideal ${formatMs(l.idealMs)}: ${Math.round(l.ofIdeal * 100)}% of ideal; ${l.done}/${l.tasks} done)`,
    })),
    notes: [
      `each task is 4 jobs of ${JOB_MS} ms (plan, implement, review, deploy); one job worker of concurrency 1 stands for one worker process; orchestrator, agents and client share this process`,
      'efficiency = tasks/s at N ÷ (N × tasks/s at 1); ideal drain = (tasks/N + 3) × job time, the pipeline with no overhead',
    ],
    figures: top === undefined ? {} : { 'workerScaling.efficiencyAt8': top.parallelEfficiency },
    targets: [
      {
        target: `parallel efficiency ≥ ${EFFICIENCY_TARGET} at 8 workers per role`,
        met: top !== undefined && top.parallelEfficiency >= EFFICIENCY_TARGET && top.done === top.tasks,
        detail: top === undefined ? 'the 8-worker level did not run' : `${top.parallelEfficiency.toFixed(3)} (${top.tasksPerSecond.toFixed(2)} tasks/s vs 8 × ${base?.tasksPerSecond.toFixed(2) ?? 'n/a'})`,
      },
    ],
    details: { jobMs: JOB_MS, tasksPerWorker: TASKS_PER_WORKER, workers: 'in-process job workers of concurrency 1', levels },
  };
}
