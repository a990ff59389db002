/** In-process agents that answer every job at once: for tests of the orchestration alone. */
import type { NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { startJobWorker, type JobHandler, type RunningWorker } from '../../core/bus/job-worker.js';
import { STAGE_OF_ROLE, type AgentRole, type Plan, type Usage } from '../../core/bus/messages.js';

export const oneCall: Usage = { calls: 1, inputTokens: 100, cachedTokens: 0, outputTokens: 10, reasoningTokens: 0 };
export const samplePlan: Plan = {
  summary: 'add the feature',
  steps: [{ title: 'write it', detail: '' }],
  filesToTouch: ['index.js'],
  risks: [],
  acceptanceChecks: ['tests pass'],
};

export const cannedHandlers: { [R in AgentRole]: JobHandler<R> } = {
  planner: async () => ({ type: 'plan.proposed', plan: samplePlan, usage: oneCall }),
  coder: async (job) => ({ type: 'code.committed', branch: job.branch, commit: `c${job.round}`, summary: 'done', attempts: 1, usage: oneCall }),
  reviewer: async () => ({ type: 'review.approved', testsPassed: true, verdict: { decision: 'approve', summary: 'fine', comments: [] }, usage: oneCall }),
  deployer: async (job) => ({ type: 'deploy.succeeded', commit: job.commit, target: 'main', usage: oneCall }),
};


export async function startCannedAgents(
  nc: NatsConnection,
  overrides: Partial<{ [R in AgentRole]: JobHandler<R> }> = {},
  options: { ackWaitMs?: number; maxDeliveries?: number; now?: () => Date; model?: string } = {},
): Promise<RunningWorker[]> {
  const log = pino({ level: 'silent' });
  const start = <R extends AgentRole>(role: R) =>
    startJobWorker({
      nc,
      role,
      stage: STAGE_OF_ROLE[role],
      handle: (overrides[role] ?? cannedHandlers[role]) as JobHandler<R>,
      log,
      concurrency: 4,
      ackWaitMs: options.ackWaitMs ?? 30_000,
      maxDeliveries: options.maxDeliveries ?? 3,
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.model === undefined ? {} : { model: options.model }),
    });
  return Promise.all([start('planner'), start('coder'), start('reviewer'), start('deployer')]);
}
