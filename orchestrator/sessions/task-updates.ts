/**
 * A session's task tells its session what happened, as one more effect of its own step: the
 * update is stored with the task's commit and published with a message id derived from the
 * event's, so it is neither lost in a crash nor counted twice.
 */
import { ROLE_OF_STAGE, type InboxMessage } from '../../core/bus/messages.js';
import type { SessionTaskUpdate } from '../../core/bus/session-messages.js';
import { subjects } from '../../core/bus/subjects.js';
import { emptyUsage, type Effect, type TaskContext, type TaskState } from '../../core/task-record.js';
import { gateStatusOf } from '../gate-policy.js';

interface TaskSnapshot {
  state: TaskState;
  context: TaskContext;
}

export function sessionUpdateEffects(before: TaskSnapshot | undefined, after: TaskSnapshot, message: InboxMessage): Effect[] {
  const session = after.context.spec.session;
  if (session === undefined) return [];
  const usage = 'usage' in message ? message.usage : emptyUsage();
  if (before?.state === after.state && usage.calls === 0) return [];
  const stage = 'jobId' in message ? after.context.stages.find((s) => s.jobId === message.jobId)?.stage : undefined;
  const gate = gateStatusOf(after.state, after.context);
  const reason =
    after.state === 'failed' ? after.context.error?.reason : after.state === 'cancelled' && message.type === 'task.cancel' ? `${message.reason} (by ${message.by})` : undefined;
  const update: SessionTaskUpdate = {
    type: 'session.task_update',
    sessionId: session.id,
    msgId: `${message.msgId}:session`,
    sentAt: message.sentAt,
    taskId: after.context.taskId,
    item: session.item,
    state: after.state,
    usage,
    ...(stage === undefined ? {} : { role: ROLE_OF_STAGE[stage] }),
    ...(reason === undefined ? {} : { reason }),
    ...(gate === undefined ? {} : { waitingFor: `the ${gate.gate} gate: ${gate.missing ?? `an approval from ${gate.approvers.join(', ')}`}` }),
  };
  return [{ kind: 'publish', subject: subjects.session(session.id), msgId: update.msgId, payload: update }];
}
