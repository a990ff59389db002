/**
 * Turns the actions a transition returned into effects (data, stored with the commit), and
 * performs them. Every effect carries a deterministic Nats-Msg-Id, so performing the same
 * effect again after a crash is a no-op on the server; gate timers (`timers/timer-effects.ts`)
 * are created only when absent, and so is a result's spend entry (`limits/spend-ledger.ts`). What is
 * published (the task log's audit entries, jobs) goes out without the values of the
 * orchestrator's configured secrets.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { InboxMessage, Job, Stage, TaskEventRecorded } from '../core/bus/messages.js';
import { JOB_TYPE_BY_ROLE, ROLE_OF_STAGE } from '../core/bus/messages.js';
import { subjects } from '../core/bus/subjects.js';
import { errorMessage } from '../core/errors.js';
import type { RedactSecrets } from '../core/security/redact-secrets.js';
import type { Effect, TaskContext } from '../core/task-record.js';
import { accountOf } from './limits/account.js';
import { utcDay, type SpendLedger } from './limits/spend-ledger.js';
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

/**
 * An agent result's model usage, owed to the spend of its task's repository and owner on the
 * UTC day it was sent, whether or not the result moved the task: the tokens were spent either way.
 */
export function spendEffects(context: TaskContext, message: InboxMessage): Effect[] {
  if (!('usage' in message)) return [];
  const { usage } = message;
  if (usage.calls === 0 && usage.inputTokens === 0 && usage.outputTokens === 0) return [];
  const { repo, org } = accountOf(context.spec);
  const payload = {
    taskId: context.taskId,
    repo,
    ...(org === undefined ? {} : { org }),
    day: utcDay(new Date(message.sentAt)),
    ...(message.model === undefined ? {} : { model: message.model }),
    usage,
  };
  return [{ kind: 'spend.record', msgId: message.msgId, payload }];
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
        ...(context.update === null ? {} : { update: context.update }),
      };
    case 'review.request': {
      const implementation = required(context.implementation, context, 'implementation');
      return {
        type,
        ...common,
        plan: required(context.plan, context, 'plan'),
        branch: context.branch,
        commit: context.reviewCommit ?? context.head ?? implementation.commit,
        round: context.reviewRound,
        summary: implementation.summary,
      };
    }
    case 'deploy.request':
      return {
        type,
        ...common,
        branch: context.branch,
        commit: context.deployCommit ?? required(context.implementation, context, 'implementation').commit,
      };
  }
}

function required<T>(value: T | null, context: TaskContext, what: string): T {
  if (value === null) throw new Error(`task ${context.taskId}: no ${what} recorded before it was needed`);
  return value;
}

export interface EffectStores {
  /** The durable timers bucket. */
  timers: KV;
  spend: SpendLedger;
  /** Takes the process's configured secret values out of everything published. */
  redact: RedactSecrets;
}

/**
 * Performs the effects a step owes. A failure says so, and whether the event itself was applied,
 * so whoever reads a dead letter of it knows what the task may be waiting on.
 */
export async function performOwedEffects(js: JetStreamClient, effects: Effect[], stores: EffectStores, applied: boolean): Promise<void> {
  try {
    await performEffects(js, effects, stores);
  } catch (err) {
    const what = applied ? 'the event was applied, but what it owes (its next job, its log entry) was' : 'what the event owes was';
    throw new Error(`${what} not all published: ${errorMessage(err)}`, { cause: err });
  }
}

async function performEffects(js: JetStreamClient, effects: Effect[], stores: EffectStores): Promise<void> {
  for (const effect of effects) {
    switch (effect.kind) {
      case 'publish':
        await js.publish(effect.subject, JSON.stringify(stores.redact(effect.payload)), { msgID: effect.msgId });
        break;
      case 'timer.set':
        await keepTimer(stores.timers, effect.key, effect.payload);
        break;
      case 'timer.clear':
        await dropTimer(stores.timers, effect.key);
        break;
      case 'spend.record':
        await stores.spend.record(effect.payload, effect.msgId);
        break;
    }
  }
}
