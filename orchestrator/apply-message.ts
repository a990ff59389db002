/**
 * One orchestrator step, pure: the stored task (if any) and one inbox message in; the record
 * to commit (if anything changed) and the effects owed after the commit out. No I/O here.
 */
import { initialTransition, transition } from 'xstate';
import type { InboxMessage } from '../core/bus/messages.js';
import { TaskState, gateAt, type Effect, type TaskRecord } from '../core/task-record.js';
import { auditEffect, planDispatches, spendEffects } from './effects.js';
import { blockingFindings, gateStatusOf, refusalOf } from './gate-policy.js';
import { taskMachine } from './task-machine.js';
import { sessionUpdateEffects } from './sessions/task-updates.js';
import { planStageTimeoutEffects } from './timers/stage-timeouts.js';
import { planTimerEffects } from './timers/timer-effects.js';

/** How many applied events a record remembers, to recognise a redelivered one. */
const APPLIED_MEMORY = 32;

export type StepOutcome =
  | { kind: 'commit'; record: TaskRecord; effects: Effect[] }
  /** Nothing to store: either a redelivery (its effects are owed again) or an ignored event. */
  | { kind: 'effects-only'; effects: Effect[]; reason: string }
  | { kind: 'unknown-task' };

export function applyMessage(current: TaskRecord | undefined, message: InboxMessage): StepOutcome {
  const seen = current?.applied.find((a) => a.msgId === message.msgId);
  if (seen !== undefined) {
    // Owed again after a crash, except a job the task has moved past (a cancel or a later event
    // applied in between): dispatching it now would run a stage the task no longer wants.
    const currentJob = current?.context.currentJobId;
    const effects = seen.effects.filter((e) => !e.msgId.endsWith(':dispatch') || e.msgId === `${currentJob}:dispatch`);
    return { kind: 'effects-only', effects, reason: 'already applied' };
  }

  if (message.type === 'task.submit') {
    if (current !== undefined) {
      return { kind: 'effects-only', effects: [], reason: `task ${message.taskId} already exists` };
    }
    const [snapshot, actions] = initialTransition(taskMachine, message);
    const state = TaskState.parse(snapshot.value);
    const effects = [
      ...planDispatches(snapshot.context, actions, message.sentAt),
      ...planStageTimeoutEffects(undefined, snapshot.context),
      ...sessionUpdateEffects(undefined, { state, context: snapshot.context }, message),
      auditEffect({ type: 'task.event', taskId: message.taskId, msgId: `${message.msgId}:audit`, sentAt: message.sentAt, event: message, state, accepted: true }),
    ];
    return { kind: 'commit', record: { version: 1, state, context: snapshot.context, applied: [{ msgId: message.msgId, effects }] }, effects };
  }

  if (current === undefined) return { kind: 'unknown-task' };

  const before = taskMachine.resolveState({ value: current.state, context: current.context });
  const [after, actions] = transition(taskMachine, before, message);
  const state = TaskState.parse(after.value);
  const refusal = refusalFor(current, message);
  const accepted = after !== before && refusal === undefined;
  const gate = gateStatusOf(state, after.context);
  // An approval that counted but left the task at the gate is answered with what is missing.
  const note = refusal ?? (accepted && message.type === 'gate.decide' && state === current.state ? gate?.missing : undefined);
  const added = after.context.decisions.slice(current.context.decisions.length);
  const autoApproved = added.filter((d) => d.via === 'policy' && d.decision === 'approve').map((d) => d.gate);
  const override = added.find((d) => d.securityOverride === true);
  const securityOverride =
    override === undefined ? undefined : { by: override.by, reason: override.comment ?? '', findings: blockingFindings(current.context) };
  const audit = auditEffect({
    type: 'task.event',
    taskId: message.taskId,
    msgId: `${message.msgId}:audit`,
    sentAt: message.sentAt,
    event: message,
    state,
    accepted,
    ...(note === undefined ? {} : { note }),
    ...(autoApproved.length === 0 ? {} : { autoApproved }),
    ...(gate === undefined ? {} : { gate }),
    ...(securityOverride === undefined ? {} : { securityOverride }),
  });

  const spend = spendEffects(current.context, message);
  if (after === before) {
    return { kind: 'effects-only', effects: [...spend, audit], reason: note ?? `ignored in state ${current.state}` };
  }
  // The audit entry last: whoever waits for it finds the rest done.
  const effects = [
    ...planDispatches(after.context, actions, message.sentAt),
    ...planTimerEffects(current, { state, context: after.context }, message),
    ...planStageTimeoutEffects(current.context, after.context),
    ...sessionUpdateEffects(current, { state, context: after.context }, message),
    ...spend,
    audit,
  ];
  const applied = [...current.applied, { msgId: message.msgId, effects }].slice(-APPLIED_MEMORY);
  return { kind: 'commit', record: { version: 1, state, context: after.context, applied }, effects };
}

/** Why an event did not move the task, in words a person reads in `stagegate logs`. */
function refusalFor(current: TaskRecord, message: InboxMessage): string | undefined {
  if (message.type === 'gate.decide') {
    const gate = gateAt(current.state);
    if (gate === undefined) return `task is ${current.state}, not waiting at a gate`;
    return refusalOf(current.context, gate, message);
  }
  if (message.type === 'gate.timer_fired') return staleTimerNote(current, message);
  if ('jobId' in message && message.jobId !== current.context.currentJobId) {
    return `stale result for job ${message.jobId} (current: ${current.context.currentJobId ?? 'none'})`;
  }
  if (message.type === 'task.retry' && current.state !== 'failed') return `task is ${current.state}, not failed`;
  return undefined;
}

/** A timer event the chart ignores: for a gate or visit the task has left, or already fired. */
function staleTimerNote(current: TaskRecord, timer: Extract<InboxMessage, { type: 'gate.timer_fired' }>): string | undefined {
  const where = `${timer.gate} gate visit ${timer.visit} ${timer.kind} timer`;
  const visit = current.context.gateVisit;
  if (gateAt(current.state) !== timer.gate || visit === null || visit.gate !== timer.gate || visit.visit !== timer.visit) {
    return `stale ${where}: the task is ${current.state}`;
  }
  if ((visit.timers.find((t) => t.kind === timer.kind)?.firedAt ?? null) !== null) return `${where} already fired`;
  return undefined;
}
