/**
 * One session step, pure: the stored session (if any) and one message in; the record to commit
 * (if anything changed) and the effects owed after the commit out. No I/O here.
 */
import { initialTransition, transition } from 'xstate';
import type { SessionMessage } from '../../core/bus/session-messages.js';
import { SessionState, type SessionRecord } from '../../core/session-record.js';
import type { Effect } from '../../core/task-record.js';
import { planSessionEffects, sessionAuditEffect } from './session-effects.js';
import { sessionMachine } from './session-machine.js';

/** Session messages interleave from many tasks; enough are remembered to recognise a redelivered one. */
const APPLIED_MEMORY = 256;

export type SessionStepOutcome =
  | { kind: 'commit'; record: SessionRecord; effects: Effect[] }
  | { kind: 'effects-only'; effects: Effect[]; reason: string }
  | { kind: 'unknown-session' };

export function applySessionMessage(current: SessionRecord | undefined, message: SessionMessage): SessionStepOutcome {
  const seen = current?.applied.find((a) => a.msgId === message.msgId);
  if (seen !== undefined) {
    // Owed again after a crash, except a backlog job the session has moved past.
    const job = current?.context.plannerJob?.jobId;
    const effects = seen.effects.filter((e) => !e.msgId.endsWith(':dispatch') || e.msgId === `${job}:dispatch`);
    return { kind: 'effects-only', effects, reason: 'already applied' };
  }

  const audit = (state: string, accepted: boolean, note?: string) =>
    sessionAuditEffect({
      type: 'session.event',
      sessionId: message.type === 'session.start' ? message.sessionId : (current?.context.sessionId ?? message.msgId),
      msgId: `${message.msgId}:audit`,
      sentAt: message.sentAt,
      event: message,
      state,
      accepted,
      ...(note === undefined ? {} : { note }),
    });

  if (message.type === 'session.start') {
    if (current !== undefined) return { kind: 'effects-only', effects: [], reason: `session ${message.sessionId} already exists` };
    const [snapshot] = initialTransition(sessionMachine, message);
    const after = { state: SessionState.parse(snapshot.value), context: snapshot.context };
    const effects = [...planSessionEffects(undefined, after, message.sentAt, message.msgId), audit(after.state, true)];
    return { kind: 'commit', record: { version: 1, ...after, applied: [{ msgId: message.msgId, effects }] }, effects };
  }
  if (current === undefined) return { kind: 'unknown-session' };

  const before = sessionMachine.resolveState({ value: current.state, context: current.context });
  const [snapshot] = transition(sessionMachine, before, message);
  const state = SessionState.parse(snapshot.value);
  if (snapshot === before) {
    const note = refusalNote(current, message);
    return { kind: 'effects-only', effects: [audit(state, false, note)], reason: note };
  }
  const after = { state, context: { ...snapshot.context, updatedAt: message.sentAt } };
  const effects = [...planSessionEffects(current, after, message.sentAt, message.msgId), audit(state, true)];
  const applied = [...current.applied, { msgId: message.msgId, effects }].slice(-APPLIED_MEMORY);
  return { kind: 'commit', record: { version: 1, ...after, applied }, effects };
}

/** Why a message changed nothing, in words a person reads in `stagegate session status`. */
function refusalNote(current: SessionRecord, message: SessionMessage): string {
  if ('jobId' in message && message.jobId !== current.context.plannerJob?.jobId) return `stale result for backlog job ${message.jobId}`;
  if (message.type === 'session.resume') {
    if (current.state !== 'paused') return `session is ${current.state}, not paused`;
    return `still over budget: ${current.context.pause?.reason ?? 'a budget'}; resume with a higher budget`;
  }
  if (message.type === 'session.pause' && current.state === 'paused') return 'session is already paused';
  return `ignored while the session is ${current.state}`;
}
