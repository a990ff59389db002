/**
 * Turns the actions a transition returned into effects (data, stored with the commit), and
 * performs them. Every effect carries a deterministic Nats-Msg-Id, so performing the same
 * effect again after a crash is a no-op on the server; gate timers (`timers/timer-effects.ts`)
 * are created only when absent. What is published (the task log's audit entries, jobs) goes out
 * without the values of the orchestrator's configured secrets.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { Job, Stage, TaskEventRecorded } from '../core/bus/messages.js';
import { JOB_TYPE_BY_ROLE, ROLE_OF_STAGE } from '../core/bus/messages.js';
import { subjects } from '../core/bus/subjects.js';
import type { RedactSecrets } from '../core/security/redact-secrets.js';
import type { Effect, TaskContext } from '../core/task-record.js';
import { dropTimer, keepTimer } from './timers/timer-store.js';


export interface PlannedAction {
  type: string;
  params?: unknown;
}

export function planDispatches(context: TaskContext, actions: PlannedAction[], sentAt: string): Effect[] {
  return actions.flatMap((action) => {
    if (action.type !== 'dispatchJob') return [];
    const { stage } = action.params as { stage: Stage };
    const job = composeJob(context, stage, sentAt);
    return [{ kind: 'publish' as const, subject: subjects.job(ROLE_OF_STAGE[stage]), msgId: `${job.msgId}:dispatch`, payload: job }];
  });
}

export function auditEffect(entry: TaskEventRecorded): Effect {
  return { kind: 'publish', subject: subjects.taskEvent(entry.taskId), msgId: entry.msgId, payload: entry };
}

function composeJob(context: TaskContext, stage: Stage, sentAt: string): Job {
  const jobId = context.currentJobId;
  if (jobId === null) throw new Error(`task ${context.taskId}: dispatch of ${stage} without a current job`);
  const common = { taskId: context.taskId, msgId: jobId, sentAt, task: context.spec, attempt: context.attempts[stage] };
  const type = JOB_TYPE_BY_ROLE[ROLE_OF_STAGE[stage]];
  switch (type) {
    case 'plan.request':
      return { type, ...common, feedback: context.planFeedback };
    case 'implement.request':
      return {
        type,
        ...common,
        plan: required(context.plan, context, 'plan'),
        branch: context.branch,
        round: context.attempts.implement,
        reviewComments: context.reviewComments,
        feedback: context.implementFeedback,
        approvedCommands: context.approvedCommands,
      };
    case 'review.request': {
      const implementation = required(context.implementation, context, 'implementation');
      return {
        type,
        ...common,
        plan: required(context.plan, context, 'plan'),
        branch: context.branch,
        commit: implementation.commit,
        round: context.reviewRound,
        summary: implementation.summary,
      };
    }
    case 'deploy.request':
      return {
        type,
        ...common,
        branch: context.branch,
        commit: required(context.implementation, context, 'implementation').commit,
      };
  }
}

function required<T>(value: T | null, context: TaskContext, what: string): T {
  if (value === null) throw new Error(`task ${context.taskId}: no ${what} recorded before it was needed`);
  return value;
}

/** `timers` is the timers bucket; needed only when an effect sets or clears a gate timer. */
export async function performEffects(js: JetStreamClient, effects: Effect[], redact: RedactSecrets, timers?: KV): Promise<void> {
  for (const effect of effects) {
    switch (effect.kind) {
      case 'publish':
        await js.publish(effect.subject, JSON.stringify(redact(effect.payload)), { msgID: effect.msgId });
        break;
      case 'timer.set':
        await keepTimer(requireTimers(timers, effect.key), effect.key, effect.payload);
        break;
      case 'timer.clear':
        await dropTimer(requireTimers(timers, effect.key), effect.key);
        break;
    }
  }
}

function requireTimers(timers: KV | undefined, key: string): KV {
  if (timers === undefined) throw new Error(`gate timer ${key}: no timers bucket was given to perform it`);
  return timers;
}
