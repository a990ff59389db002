/**
 * What a session step owes after its commit, derived from the session before and after it:
 * the backlog job when a new one is wanted, a task submission for each item that started, a
 * cancel for each running task when the session stops (or a budget stops it), its timers, its
 * digests and its audit entry. Every publish has a deterministic message id.
 */
import type { BacklogRequest, ScheduledMessage, TaskCancel, TaskSubmit } from '../../core/bus/messages.js';
import type { SessionDigest, SessionEventRecorded, SessionTimerFired } from '../../core/bus/session-messages.js';
import { subjects } from '../../core/bus/subjects.js';
import type { SessionContext, SessionItem, SessionState } from '../../core/session-record.js';
import type { Effect } from '../../core/task-record.js';
import { backlogStatus } from './backlog-state.js';
import { renderDigest } from './digest.js';

export interface SessionSnapshot {
  state: SessionState;
  context: SessionContext;
}

const ENDED: ReadonlySet<SessionState> = new Set(['completed', 'stopped']);

export function planSessionEffects(before: SessionSnapshot | undefined, after: SessionSnapshot, sentAt: string, msgId: string): Effect[] {
  return [
    ...backlogDispatch(before, after, sentAt),
    ...taskSubmissions(before, after, sentAt),
    ...taskCancels(before, after, sentAt),
    ...timerEffects(before, after),
    ...digestEffects(before, after, sentAt, msgId),
  ];
}

function backlogDispatch(before: SessionSnapshot | undefined, after: SessionSnapshot, sentAt: string): Effect[] {
  const job = after.context.plannerJob;
  if (job === null || job.jobId === before?.context.plannerJob?.jobId) return [];
  const { spec, sessionId } = after.context;
  const request: BacklogRequest = {
    type: 'backlog.request',
    taskId: sessionId,
    msgId: job.jobId,
    sentAt,
    attempt: job.attempt,
    repo: spec.repo,
    base: spec.base,
    goal: spec.goal,
    revision: job.revision,
    current: backlogStatus(after.context.items),
    ...(job.reason === null ? {} : { reason: job.reason }),
  };
  return [{ kind: 'publish', subject: subjects.job('planner'), msgId: `${job.jobId}:dispatch`, payload: request }];
}

function taskSubmissions(before: SessionSnapshot | undefined, after: SessionSnapshot, sentAt: string): Effect[] {
  const earlier = new Map((before?.context.items ?? []).map((i) => [i.id, i.taskId]));
  return after.context.items
    .filter((item) => item.status === 'running' && item.taskId !== null && earlier.get(item.id) !== item.taskId)
    .map((item) => {
      const submit = taskSubmitFor(after.context, item, sentAt);
      return { kind: 'publish', subject: subjects.inbox(submit.taskId), msgId: submit.msgId, payload: submit };
    });
}

export function taskSubmitFor(context: SessionContext, item: SessionItem, sentAt: string): TaskSubmit {
  const { spec } = context;
  const taskId = item.taskId ?? '';
  return {
    type: 'task.submit',
    taskId,
    msgId: `${taskId}:submit`,
    sentAt,
    spec: {
      repo: spec.repo,
      title: item.title,
      body: `${item.body}\n\n(Part of session ${context.sessionId}, whose goal is: ${spec.goal})`,
      base: spec.base,
      submittedBy: spec.submittedBy,
      session: { id: context.sessionId, item: item.id },
      ...(spec.testCommand === undefined ? {} : { testCommand: spec.testCommand }),
      ...(spec.deployCommand === undefined ? {} : { deployCommand: spec.deployCommand }),
      ...(spec.stageTimeoutsMs === undefined ? {} : { stageTimeoutsMs: spec.stageTimeoutsMs }),
    },
    policies: context.policies,
    maxReviewRounds: context.maxReviewRounds,
  };
}

/** Running tasks are cancelled when the session stops, or when a budget pauses it and it is set to stop on one. */
function taskCancels(before: SessionSnapshot | undefined, after: SessionSnapshot, sentAt: string): Effect[] {
  if (before === undefined) return [];
  const stopped = after.state === 'stopped' && before.state !== 'stopped';
  const budgetStop = after.context.pause?.kind === 'budget' && before.context.pause?.kind !== 'budget' && after.context.spec.onBudget === 'stop';
  if (!stopped && !budgetStop) return [];
  const reason = stopped ? (after.context.outcome ?? 'the session stopped') : `the session reached ${after.context.pause?.reason ?? 'a budget'}`;
  return after.context.items
    .filter((item) => item.status === 'running' && item.taskId !== null)
    .map((item) => {
      const taskId = item.taskId ?? '';
      const cancel: TaskCancel = { type: 'task.cancel', taskId, msgId: `${taskId}:session-cancel`, sentAt, by: `session:${after.context.sessionId}`, reason };
      return { kind: 'publish', subject: subjects.inbox(taskId), msgId: cancel.msgId, payload: cancel };
    });
}

/** The timers a session should have in the timers bucket: its deadline and its next digest. */
export function sessionTimers({ state, context }: SessionSnapshot): Map<string, ScheduledMessage> {
  const timers = new Map<string, ScheduledMessage>();
  if (ENDED.has(state)) return timers;
  const { sessionId, spec } = context;
  const timer = (kind: SessionTimerFired['kind'], seq: number, fireAt: string): ScheduledMessage => {
    const message: Omit<SessionTimerFired, 'sentAt'> = { type: 'session.timer_fired', sessionId, msgId: `${sessionId}:timer:${kind}:${seq}:${fireAt}`, kind, seq, fireAt };
    return { subject: subjects.session(sessionId), fireAt, message };
  };
  if (spec.budget.until !== undefined) {
    timers.set(`session.${sessionId}.deadline.${Date.parse(spec.budget.until)}`, timer('deadline', 0, spec.budget.until));
  }
  if (spec.digestEveryMs !== undefined) {
    const seq = context.digests + 1;
    const fireAt = new Date(Date.parse(context.lastDigestAt ?? context.createdAt) + spec.digestEveryMs).toISOString();
    timers.set(`session.${sessionId}.digest.${seq}`, timer('digest', seq, fireAt));
  }
  return timers;
}

function timerEffects(before: SessionSnapshot | undefined, after: SessionSnapshot): Effect[] {
  const was = before === undefined ? new Map<string, ScheduledMessage>() : sessionTimers(before);
  const now = sessionTimers(after);
  const clears: Effect[] = [...was].filter(([key]) => !now.has(key)).map(([key, payload]) => ({ kind: 'timer.clear', key, msgId: `${key}:clear`, payload }));
  const sets: Effect[] = [...now].filter(([key]) => !was.has(key)).map(([key, payload]) => ({ kind: 'timer.set', key, msgId: `${key}:set`, payload }));
  return [...clears, ...sets];
}

/** A digest on schedule, and a report each time the session pauses, completes or stops. */
function digestEffects(before: SessionSnapshot | undefined, after: SessionSnapshot, sentAt: string, msgId: string): Effect[] {
  if (before === undefined) return [];
  const reason = digestReason(before, after);
  if (reason === undefined) return [];
  const since = reason === 'scheduled' ? before.context.lastDigestAt : null;
  const digest: SessionDigest = {
    type: 'session.digest',
    sessionId: after.context.sessionId,
    msgId: `${msgId}:digest`,
    sentAt,
    reason,
    state: after.state,
    digestTo: after.context.spec.digestTo,
    text: renderDigest(after.context, after.state, reason, since),
  };
  return [{ kind: 'publish', subject: subjects.sessionDigest(digest.sessionId), msgId: digest.msgId, payload: digest }];
}

function digestReason(before: SessionSnapshot, after: SessionSnapshot): SessionDigest['reason'] | undefined {
  if (after.state !== before.state && (after.state === 'paused' || after.state === 'completed' || after.state === 'stopped')) return after.state;
  if (after.context.digests > before.context.digests) return 'scheduled';
  return undefined;
}

export function sessionAuditEffect(entry: SessionEventRecorded): Effect {
  return { kind: 'publish', subject: subjects.sessionEvent(entry.sessionId), msgId: entry.msgId, payload: entry };
}
