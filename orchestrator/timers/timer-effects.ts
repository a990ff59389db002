/**
 * Which durable timers a step owes, pure. The timers a task should have are the unfired timers
 * of the gate visit it waits at; a step's timer effects are the difference between before and
 * after: set the new ones, clear the ones it no longer needs (the gate was left, or the timer
 * fired). The timer that fired is not cleared here: the scheduler that fired it deletes it.
 */
import type { GateTimer, InboxMessage } from '../../core/bus/messages.js';
import { timerKey } from '../../core/bus/subjects.js';
import { gateAt, type Effect, type TaskContext, type TaskState } from '../../core/task-record.js';
import { openVisit } from '../gate-policy.js';

interface TaskSnapshot {
  state: TaskState;
  context: TaskContext;
}

/** The timers the task should have in the timers bucket right now. */
export function pendingTimers({ state, context }: TaskSnapshot): GateTimer[] {
  const gate = gateAt(state);
  const visit = gate === undefined ? undefined : openVisit(context, gate);
  if (gate === undefined || visit === undefined) return [];
  return visit.timers
    .filter((t) => t.firedAt === null)
    .map((t) => ({ taskId: context.taskId, gate, visit: visit.visit, kind: t.kind, fireAt: t.fireAt }));
}

export function planTimerEffects(before: TaskSnapshot | undefined, after: TaskSnapshot, event: InboxMessage): Effect[] {
  const was = before === undefined ? [] : pendingTimers(before);
  const now = pendingTimers(after);
  const wasKeys = new Set(was.map(timerKey));
  const nowKeys = new Set(now.map(timerKey));
  const fired = event.type === 'gate.timer_fired' ? timerKey({ ...event }) : undefined;
  const clears: Effect[] = was
    .filter((t) => !nowKeys.has(timerKey(t)) && timerKey(t) !== fired)
    .map((t) => ({ kind: 'timer.clear', key: timerKey(t), msgId: `${timerKey(t)}:clear`, payload: t }));
  const sets: Effect[] = now
    .filter((t) => !wasKeys.has(timerKey(t)))
    .map((t) => ({ kind: 'timer.set', key: timerKey(t), msgId: `${timerKey(t)}:set`, payload: t }));
  return [...clears, ...sets];
}
