/**
 * The whole pipeline with agents that answer at once: one orchestrator in-process, job workers
 * running the canned handlers with as many pulls per role as there are tasks at once, every gate
 * on auto-approve. Measures tasks per second at several concurrencies (submit N tasks at once,
 * wait until all are done) and the orchestration overhead per stage hop over all of them.
 */
import { performance } from 'node:perf_hooks';
import { connectBus } from '../core/bus/connect.js';
import { startJobWorker, type JobHandler, type RunningWorker } from '../core/bus/job-worker.js';
import { AgentRole, STAGE_OF_ROLE, type TaskSpec } from '../core/bus/messages.js';
import { ensureTopology } from '../core/bus/topology.js';
import type { GatePolicies } from '../core/policy.js';
import { startOrchestrator } from '../orchestrator/orchestrator.js';
import { createTaskClient, newTaskId, type TaskClient } from '../orchestrator/task-client.js';
import { cannedHandlers } from '../test/helpers/canned-agents.js';
import { roundMs, roundSummary, summarize } from './stats.js';
import { FLOOR_P50_MS } from './raw-floor.js';
import { formatMs, type BenchContext, type Row, type Suite, type SuiteReport, type TargetCheck } from './suite.js';
import { TaskTimelines } from './task-timelines.js';

export interface Level {
  /** Tasks submitted at once. */
  concurrent: number;
  /** How many times; more where one round is short. */
  rounds: number;
}

const DEFAULT_LEVELS: readonly Level[] = [
  { concurrent: 1, rounds: 100 },
  { concurrent: 16, rounds: 20 },
  { concurrent: 64, rounds: 10 },
];
/** Rounds at the highest level before measuring: the JIT needs a few hundred steps to settle. */
const WARM_UP_ROUNDS = 4;
/** A round that takes longer than this is reported incomplete and its level stops. */
const ROUND_TIMEOUT_MS = 20_000;
/** Overhead p50 must stay within this multiple of the raw floor p50. */
const OVERHEAD_TARGET_RATIO = 3;

const autoApprove = { approvers: ['bench'], required: 1, autoApprove: true };
const policies: GatePolicies = { plan: autoApprove, review: autoApprove, deploy: autoApprove };
const spec: TaskSpec = { repo: '/tmp/bench-repo', title: 'Bench task', body: '', base: 'main', submittedBy: 'bench' };

const HOP_DEFINITION =
  'result published → next job dispatched: a worker\'s handler returns (the job worker publishes the result right away) → the orchestrator\'s job for the next role appears on the jobs subject; performance.now() in this one process';

interface RoundResult {
  concurrent: number;
  elapsedMs: number;
  /** CPU time of this whole process (orchestrator, agents, client) during the round. */
  cpuMs: number;
  /** Time the event loop was busy during the round (one thread: orchestrator, agents, client). */
  busyMs: number;
  submitted: number;
  done: number;
  taskIds: string[];
}

export const pipelineSuite: Suite = createPipelineSuite(DEFAULT_LEVELS);

/** The target on completion applies to the highest level; workers get that many pulls per role. */
export function createPipelineSuite(levels: readonly Level[]): Suite {
  return {
    id: 'pipeline',
    title: 'pipeline, agents answering at once',
    run: (ctx) => measurePipeline(ctx, levels),
  };
}

async function measurePipeline(ctx: BenchContext, levels: readonly Level[]): Promise<SuiteReport> {
  const maxConcurrent = Math.max(...levels.map((l) => l.concurrent));
  const [ncOrchestrator, ncAgents, ncClient] = await Promise.all([
    connectBus(ctx.natsUrl, 'bench-orchestrator'),
    connectBus(ctx.natsUrl, 'bench-agents'),
    connectBus(ctx.natsUrl, 'bench-client'),
  ]);
  const connections = [ncOrchestrator, ncAgents, ncClient];
  const timelines = new TaskTimelines();
  const workers: RunningWorker[] = [];
  let orchestrator: { stop(): Promise<void> } | undefined;
  const taps = timelines.tap(ncClient);
  try {
    await ensureTopology(ncOrchestrator, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
    orchestrator = await startOrchestrator({ nc: ncOrchestrator, log: ctx.log });
    const startRole = <R extends AgentRole>(role: R) =>
      startJobWorker({
        nc: ncAgents,
        role,
        stage: STAGE_OF_ROLE[role],
        handle: timelines.wrap(role, cannedHandlers[role] as JobHandler<R>),
        log: ctx.log,
        concurrency: maxConcurrent,
        ackWaitMs: 30_000,
        maxDeliveries: 3,
      });
    workers.push(...(await Promise.all(AgentRole.options.map((role) => startRole(role)))));
    const client = await createTaskClient(ncClient);

    for (let i = 0; i < WARM_UP_ROUNDS; i++) {
      const warmUp = await runRound(client, timelines, maxConcurrent);
      if (warmUp.done < warmUp.submitted) break;
    }
    const rounds: RoundResult[] = [];
    for (const level of levels) {
      for (let i = 0; i < level.rounds; i++) {
        const round = await runRound(client, timelines, level.concurrent);
        rounds.push(round);
        if (round.done < round.submitted) break;
      }
    }
    return report(levels, rounds, timelines, ctx.figures.get(FLOOR_P50_MS));
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await orchestrator?.stop();
    for (const sub of taps) sub.unsubscribe();
    await Promise.all(connections.map((nc) => nc.drain()));
  }
}

async function runRound(client: TaskClient, timelines: TaskTimelines, concurrent: number): Promise<RoundResult> {
  const taskIds = Array.from({ length: concurrent }, () => newTaskId());
  const ends = taskIds.map((taskId) => timelines.waitForEnd(taskId, ROUND_TIMEOUT_MS));
  const start = performance.now();
  const cpuBefore = process.cpuUsage();
  const loopBefore = performance.eventLoopUtilization();
  await Promise.all(
    taskIds.map((taskId) => {
      timelines.markSubmitted(taskId);
      return client.submit({ spec, policies, maxReviewRounds: 1, taskId });
    }),
  );
  const outcomes = await Promise.all(ends);
  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  const loop = performance.eventLoopUtilization(loopBefore);
  const done = outcomes.filter((end) => end?.state === 'done').length;
  return { concurrent, elapsedMs, cpuMs: (cpu.user + cpu.system) / 1_000, busyMs: loop.active, submitted: concurrent, done, taskIds };
}

function summarizeLevel(concurrent: number, rounds: RoundResult[], timelines: TaskTimelines) {
  const ofLevel = rounds.filter((r) => r.concurrent === concurrent);
  const total = (pick: (r: RoundResult) => number) => ofLevel.reduce((sum, r) => sum + pick(r), 0);
  const elapsedMs = total((r) => r.elapsedMs);
  const submitted = total((r) => r.submitted);
  const done = total((r) => r.done);
  const samples = timelines.samples(ofLevel.flatMap((r) => r.taskIds));
  return {
    concurrent,
    rounds: ofLevel.length,
    submitted,
    done,
    allComplete: submitted > 0 && done === submitted,
    tasksPerSecond: elapsedMs === 0 ? 0 : Math.round((done / elapsedMs) * 10_000) / 10,
    /** Per task, less sensitive than tasks/s to other load on the machine. */
    processCpuMsPerTask: submitted === 0 ? 0 : roundMs(total((r) => r.cpuMs) / submitted),
    eventLoopBusyMsPerTask: submitted === 0 ? 0 : roundMs(total((r) => r.busyMs) / submitted),
    /** Near 1: the one thread running orchestrator, agents and client is saturated. */
    eventLoopUtilization: elapsedMs === 0 ? 0 : Math.round((total((r) => r.busyMs) / elapsedMs) * 100) / 100,
    roundMs: roundSummary(summarize(ofLevel.map((r) => r.elapsedMs))),
    hopMs: roundSummary(summarize(samples.hop)),
    hopToWorkerMs: roundSummary(summarize(samples.hopToWorker)),
    hopLegsP50Ms: {
      resultPublishedToInboxSeen: roundMs(summarize(samples.legs.resultToInbox).p50),
      inboxSeenToJobSeen: roundMs(summarize(samples.legs.inboxToJob).p50),
      jobSeenToWorkerReceived: roundMs(summarize(samples.legs.jobToWorker).p50),
    },
    taskLatencyMs: roundSummary(summarize(samples.taskLatency)),
  };
}

function report(levelPlan: readonly Level[], rounds: RoundResult[], timelines: TaskTimelines, floorP50: number | undefined): SuiteReport {
  const all = timelines.samples(rounds.flatMap((r) => r.taskIds));
  const overhead = summarize(all.hop);
  const ratio = (ms: number) => (floorP50 === undefined ? Number.NaN : ms / floorP50);
  const times = (ms: number) => (Number.isFinite(ratio(ms)) ? ` (${ratio(ms).toFixed(1)}× floor p50)` : '');
  const levels = levelPlan.map(({ concurrent }) => summarizeLevel(concurrent, rounds, timelines));
  const top = levels.reduce((a, b) => (b.concurrent > a.concurrent ? b : a));
  const lowest = levels.reduce((a, b) => (b.concurrent < a.concurrent ? b : a));
  const legP50 = (samples: number[]) => formatMs(summarize(samples).p50);

  const rows: Row[] = [
    { metric: 'overhead per hop p50, all hops of all runs', value: `${formatMs(overhead.p50)}${times(overhead.p50)}` },
    { metric: 'overhead per hop p99, all hops of all runs', value: `${formatMs(overhead.p99)}${times(overhead.p99)}` },
    ...levels.map((l) => ({
      metric: `  hop p50 | p99 at ${l.concurrent} concurrent`,
      value: `${formatMs(l.hopMs.p50)}${times(l.hopMs.p50)} | ${formatMs(l.hopMs.p99)}  (to a worker's handler: p50 ${formatMs(l.hopToWorkerMs.p50)})`,
    })),
    {
      metric: '  legs p50: result → on inbox | → job on bus | → worker',
      value: `${legP50(all.legs.resultToInbox)} | ${legP50(all.legs.inboxToJob)} | ${legP50(all.legs.jobToWorker)}`,
    },
    ...levels.map((l) => ({
      metric: `tasks/s at ${l.concurrent} concurrent (${l.rounds} round${l.rounds === 1 ? '' : 's'})`,
      value: `${l.tasksPerSecond.toFixed(1)}  (${l.done}/${l.submitted} done, task p50 ${formatMs(l.taskLatencyMs.p50)}, event loop ${Math.round(l.eventLoopUtilization * 100)}% busy)`,
    })),
    { metric: `all ${top.concurrent} concurrent tasks complete`, value: `${top.allComplete ? 'yes' : 'no'} (${top.done}/${top.submitted} over ${top.rounds} rounds)` },
  ];

  // The orchestration overhead of a hop is judged where no other task's work queues in front of
  // it (one task at a time); with many at once, one event loop runs orchestrator, agents and
  // client, and a hop mostly waits for it. Both are printed; the loaded figure is not hidden.
  const loaded = `; with queueing (all runs, up to ${top.concurrent} at once in one process): ${formatMs(overhead.p50)}${times(overhead.p50)}`;
  const targets: TargetCheck[] = [
    {
      target: `overhead p50 within ${OVERHEAD_TARGET_RATIO}× the raw floor p50 (one task at a time)`,
      met: floorP50 !== undefined && lowest.hopMs.p50 <= OVERHEAD_TARGET_RATIO * floorP50,
      detail:
        floorP50 === undefined
          ? 'no raw floor measured'
          : `${formatMs(lowest.hopMs.p50)} at ${lowest.concurrent} concurrent vs ${OVERHEAD_TARGET_RATIO} × ${formatMs(floorP50)} = ${formatMs(OVERHEAD_TARGET_RATIO * floorP50)} (${ratio(lowest.hopMs.p50).toFixed(1)}×)${loaded}`,
    },
    {
      target: `${top.concurrent} concurrent tasks all complete`,
      met: top.allComplete,
      detail: `${top.done} of ${top.submitted} done`,
    },
  ];

  return {
    rows,
    notes: [
      `hop = ${HOP_DEFINITION}`,
      'legs: taps on the inbox and jobs subjects split a hop into result transit, the orchestrator step, job delivery',
      'orchestrator, agents, client and taps share one event loop: when it is near 100% busy, hops are mostly queueing',
    ],
    figures: { 'pipeline.overheadP50Ms': overhead.p50, 'pipeline.overheadP99Ms': overhead.p99 },
    targets,
    details: {
      hopDefinition: HOP_DEFINITION,
      setup: {
        orchestrators: 1,
        orchestratorConcurrency: 'default',
        workerPullsPerRole: top.concurrent,
        gates: 'all auto-approve',
        warmUpTasks: WARM_UP_ROUNDS * top.concurrent,
      },
      overheadMs: roundSummary(overhead),
      overheadToFloorP50: floorP50 === undefined ? null : { p50: roundMs(ratio(overhead.p50)), p99: roundMs(ratio(overhead.p99)) },
      overheadByHopMs: Object.fromEntries(Object.entries(all.byHop).map(([hop, samples]) => [hop, roundSummary(summarize(samples))])),
      hopLegsMs: {
        resultPublishedToInboxSeen: roundSummary(summarize(all.legs.resultToInbox)),
        inboxSeenToJobSeen: roundSummary(summarize(all.legs.inboxToJob)),
        jobSeenToWorkerReceived: roundSummary(summarize(all.legs.jobToWorker)),
      },
      submitToFirstJobMs: roundSummary(summarize(all.submitToFirstJob)),
      lastResultToDoneMs: roundSummary(summarize(all.lastResultToDone)),
      levels,
    },
  };
}
