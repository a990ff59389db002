/**
 * Agents that take a fixed time per job, as a model call would (a sleep, no CPU), for the
 * scaling benchmarks: one job worker of concurrency 1 stands for one `stagegate worker` process.
 * And the one step every such benchmark repeats: submit N tasks at once, wait until all are done.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startJobWorker, type JobHandler, type RunningWorker } from '../core/bus/job-worker.js';
import { STAGE_OF_ROLE, type AgentRole, type TaskSpec } from '../core/bus/messages.js';
import type { Logger } from '../core/log.js';
import type { GatePolicies } from '../core/policy.js';
import { newTaskId, type TaskClient } from '../orchestrator/task-client.js';
import { cannedHandlers } from '../test/helpers/canned-agents.js';
import type { TaskTimelines } from './task-timelines.js';

const autoApprove = { approvers: ['bench'], required: 1, autoApprove: true };
const policies: GatePolicies = { plan: autoApprove, review: autoApprove, deploy: autoApprove };
const spec: TaskSpec = { repo: '/tmp/bench-repo', title: 'Bench task', body: '', base: 'main', submittedBy: 'bench' };

/** One worker of `role` running one job at a time, each taking `latencyMs`. */
export function startSimulatedWorker(nc: NatsConnection, role: AgentRole, latencyMs: number, log: Logger): Promise<RunningWorker> {
  const canned = cannedHandlers[role] as JobHandler<AgentRole>;
  const handle: JobHandler<AgentRole> = async (job, ctx) => {
    await sleep(latencyMs);
    return canned(job, ctx);
  };
  return startJobWorker({ nc, role, stage: STAGE_OF_ROLE[role], handle, log, concurrency: 1, ackWaitMs: 30_000, maxDeliveries: 3 });
}

export interface Drain {
  tasks: number;
  done: number;
  /** First submit → last task done. */
  elapsedMs: number;
}

/** Submits `count` tasks at once (every gate auto-approves, review approves) and waits for all. */
export async function drainTasks(client: TaskClient, timelines: TaskTimelines, count: number, timeoutMs: number): Promise<Drain> {
  const taskIds = Array.from({ length: count }, () => newTaskId());
  const ends = taskIds.map((taskId) => timelines.waitForEnd(taskId, timeoutMs));
  const start = performance.now();
  await Promise.all(
    taskIds.map((taskId) => {
      timelines.markSubmitted(taskId);
      return client.submit({ spec, policies, maxReviewRounds: 1, taskId });
    }),
  );
  const outcomes = await Promise.all(ends);
  const done = outcomes.filter((end) => end?.state === 'done');
  const last = Math.max(...done.map((end) => end?.at ?? start));
  return { tasks: count, done: done.length, elapsedMs: (done.length === count ? last : performance.now()) - start };
}
