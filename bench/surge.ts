/**
 * A surge: 500 tasks submitted at once and drained by a fixed 1, a fixed 8, and an autoscaled
 * 1 → 8 workers per role (the real autoscaler: consumer counts read from NATS, the same
 * decisions, pools of in-process job workers). Jobs take 50 ms, not 200, so a fixed single
 * worker drains in ~25 s instead of ~100 s; the autoscaler's reaction (interval, scale-up) is
 * what is compared, and it weighs more against shorter jobs. Also measured: how long real
 * `stagegate worker` processes take to be ready (one, and seven at once), which a process pool
 * adds to a scale-up.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { consumerLoadReader, startAutoscaler } from '../cli/autoscale/autoscaler.js';
import { createWorkerPool, inProcessLauncher, type WorkerPool } from '../cli/autoscale/worker-pool.js';
import { createProcessGroup } from '../cli/process-group.js';
import { connectBus } from '../core/bus/connect.js';
import type { RunningWorker } from '../core/bus/job-worker.js';
import { AgentRole } from '../core/bus/messages.js';
import { ensureTopology } from '../core/bus/topology.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { startOrchestrator } from '../orchestrator/orchestrator.js';
import { createTaskClient, type TaskClient } from '../orchestrator/task-client.js';
import { drainTasks, startSimulatedWorker, type Drain } from './simulated-agents.js';
import { formatMs, type BenchContext, type Suite, type SuiteReport } from './suite.js';
import { TaskTimelines } from './task-timelines.js';

const TASKS = 500;
const JOB_MS = 50;
const MAX_WORKERS = 8;
const INTERVAL_MS = 250;
const COOLDOWN_MS = 3_000;
const SAMPLE_MS = 100;
const DRAIN_TIMEOUT_MS = 120_000;
const TARGET_RATIO = 1.2;

export const surgeSuite: Suite = {
  id: 'surge',
  title: `surge of ${TASKS} tasks, agents taking ${JOB_MS} ms a job`,
  run: measureSurge,
};

interface ModeResult extends Drain {
  mode: string;
  /** Sum over roles of workers running, integrated over the drain. */
  workerSeconds: number;
  peakWorkersPerRole?: number;
  /** Autoscaled: drain end → every role back at 1 worker. */
  backToMinMs?: number;
  /** Autoscaled: submit → every role at 8 workers. */
  fullCapacityMs?: number;
}

interface Shared {
  ctx: BenchContext;
  ncAgents: NatsConnection;
  client: TaskClient;
  timelines: TaskTimelines;
}

async function measureSurge(ctx: BenchContext): Promise<SuiteReport> {
  const connect = (name: string) => connectBus(ctx.natsUrl, `bench-surge-${name}`);
  const [ncOrchestrator, ncAgents, ncClient] = await Promise.all([connect('orchestrator'), connect('agents'), connect('client')]);
  const timelines = new TaskTimelines();
  const taps = timelines.tap(ncClient);
  let orchestrator: { stop(): Promise<void> } | undefined;
  try {
    await ensureTopology(ncOrchestrator, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
    orchestrator = await startOrchestrator({ nc: ncOrchestrator, log: ctx.log });
    const shared: Shared = { ctx, ncAgents, client: await createTaskClient(ncClient), timelines };
    const fixed8 = await runFixed(shared, MAX_WORKERS);
    const autoscaled = await runAutoscaled(shared, ncClient);
    const fixed1 = await runFixed(shared, 1);
    const processStart = await measureProcessStart(ctx.natsUrl);
    return report([fixed1, fixed8, autoscaled], processStart);
  } finally {
    await orchestrator?.stop();
    for (const sub of taps) sub.unsubscribe();
    await Promise.all([ncOrchestrator, ncAgents, ncClient].map((nc) => nc.drain()));
  }
}

async function runFixed(shared: Shared, perRole: number): Promise<ModeResult> {
  const workers: RunningWorker[] = [];
  try {
    for (const role of AgentRole.options) {
      for (let i = 0; i < perRole; i++) workers.push(await startSimulatedWorker(shared.ncAgents, role, JOB_MS, shared.ctx.log));
    }
    const drain = await drainTasks(shared.client, shared.timelines, TASKS, DRAIN_TIMEOUT_MS);
    return { ...drain, mode: `fixed ${perRole}`, workerSeconds: (perRole * AgentRole.options.length * drain.elapsedMs) / 1000 };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

async function runAutoscaled(shared: Shared, ncClient: NatsConnection): Promise<ModeResult> {
  const { ctx } = shared;
  const pools = new Map<AgentRole, WorkerPool>(
    AgentRole.options.map((role) => [role, createWorkerPool(role, inProcessLauncher(() => startSimulatedWorker(shared.ncAgents, role, JOB_MS, ctx.log)), ctx.log)]),
  );
  const autoscaler = await startAutoscaler({
    roles: AgentRole.options,
    policy: { min: 1, max: MAX_WORKERS, jobsPerWorker: 1, cooldownMs: COOLDOWN_MS },
    intervalMs: INTERVAL_MS,
    readLoad: await consumerLoadReader(ncClient),
    pools,
    log: ctx.log,
  });
  const running = () => [...pools.values()].map((p) => p.running());
  try {
    let workerSeconds = 0;
    let peak = 0;
    let fullCapacityMs: number | undefined;
    let draining = true;
    const start = performance.now();
    const sampler = (async () => {
      while (draining) {
        await sleep(SAMPLE_MS);
        const counts = running();
        workerSeconds += (counts.reduce((a, b) => a + b, 0) * SAMPLE_MS) / 1000;
        peak = Math.max(peak, ...counts);
        if (fullCapacityMs === undefined && counts.every((c) => c === MAX_WORKERS)) fullCapacityMs = performance.now() - start;
      }
    })();
    const drain = await drainTasks(shared.client, shared.timelines, TASKS, DRAIN_TIMEOUT_MS);
    draining = false;
    await sampler;
    const drained = performance.now();
    while (running().some((c) => c > 1) && performance.now() - drained < COOLDOWN_MS + 15_000) await sleep(SAMPLE_MS);
    const backToMinMs = running().every((c) => c === 1) ? performance.now() - drained : undefined;
    return {
      ...drain,
      mode: `autoscaled 1 → ${MAX_WORKERS}`,
      workerSeconds,
      peakWorkersPerRole: peak,
      ...(backToMinMs === undefined ? {} : { backToMinMs }),
      ...(fullCapacityMs === undefined ? {} : { fullCapacityMs }),
    };
  } finally {
    await autoscaler.stop();
  }
}

interface ProcessStart {
  oneMs: number;
  /** A scale-up from 1 to 8: seven started at once, sharing the machine's cores. */
  sevenAtOnceMs: number;
}

/** Spawn → ready line of `stagegate worker deployer` processes (no model needed), one then seven at once. */
async function measureProcessStart(natsUrl: string): Promise<ProcessStart> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-bench-proc-'));
  const group = createProcessGroup({ env: { ...process.env, NATS_URL: natsUrl, STAGEGATE_LOG_LEVEL: 'warn' }, logFile: join(dir, 'worker.log') });
  const timeStarting = async (n: number) => {
    const start = performance.now();
    await Promise.all(Array.from({ length: n }, (_, i) => group.start(`deployer-probe-${n}-${i}`, ['worker', 'deployer'])));
    return performance.now() - start;
  };
  try {
    const oneMs = await timeStarting(1);
    return { oneMs, sevenAtOnceMs: await timeStarting(MAX_WORKERS - 1) };
  } finally {
    await group.stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

function report(modes: ModeResult[], processStart: ProcessStart): SuiteReport {
  const [fixed1, fixed8, autoscaled] = modes as [ModeResult, ModeResult, ModeResult];
  const ratio = autoscaled.elapsedMs / fixed8.elapsedMs;
  const allDone = modes.every((m) => m.done === m.tasks);
  const round = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms));
  return {
    rows: [
      ...modes.map((m) => ({
        metric: `${m.mode} worker${m.mode === 'fixed 1' ? '' : 's'} per role`,
        value: `drained in ${formatMs(m.elapsedMs)}  (${m.done}/${m.tasks} done, ${m.workerSeconds.toFixed(1)} worker-seconds)`,
      })),
      { metric: 'autoscaled ÷ fixed 8', value: `${ratio.toFixed(3)}×` },
      {
        metric: 'autoscaler: all roles at 8 | back to 1 after drain',
        value: `${formatMs(autoscaled.fullCapacityMs ?? Number.NaN)} after submit | ${formatMs(autoscaled.backToMinMs ?? Number.NaN)} (cool-down ${COOLDOWN_MS / 1000} s)`,
      },
      { metric: '`stagegate worker` processes: spawn → ready', value: `1: ${formatMs(processStart.oneMs)}, ${MAX_WORKERS - 1} at once: ${formatMs(processStart.sevenAtOnceMs)} (${cpus().length} cpus)` },
    ],
    notes: [
      `jobs take ${JOB_MS} ms (not 200) to keep the fixed-1 drain near 25 s; autoscaler interval ${INTERVAL_MS} ms, cool-down ${COOLDOWN_MS / 1000} s, 1 job per worker`,
      'workers are in-process job workers (concurrency 1 each) started and stopped by the real autoscaler; with `stagegate worker` processes a scale-up also waits for the process starts above (on few cores, prefer --jobs-per-worker over more processes)',
    ],
    figures: { 'surge.autoscaledToFixed8': ratio },
    targets: [
      {
        target: `autoscaled (1 → ${MAX_WORKERS}) drain within ${TARGET_RATIO}× the fixed-${MAX_WORKERS} drain`,
        met: allDone && ratio <= TARGET_RATIO,
        detail: `${formatMs(autoscaled.elapsedMs)} vs ${formatMs(fixed8.elapsedMs)} (${ratio.toFixed(3)}×); fixed 1: ${formatMs(fixed1.elapsedMs)}${allDone ? '' : '; not every task finished'}`,
      },
    ],
    details: {
      tasks: TASKS,
      jobMs: JOB_MS,
      autoscaler: { min: 1, max: MAX_WORKERS, intervalMs: INTERVAL_MS, cooldownMs: COOLDOWN_MS, jobsPerWorker: 1 },
      modes: modes.map((m) => ({
        mode: m.mode,
        tasks: m.tasks,
        done: m.done,
        drainMs: Math.round(m.elapsedMs),
        workerSeconds: Math.round(m.workerSeconds * 10) / 10,
        ...(m.peakWorkersPerRole === undefined ? {} : { peakWorkersPerRole: m.peakWorkersPerRole, fullCapacityMs: round(m.fullCapacityMs), backToMinMs: round(m.backToMinMs) }),
      })),
      processStartMs: { one: Math.round(processStart.oneMs), sevenAtOnce: Math.round(processStart.sevenAtOnceMs) },
    },
  };
}
