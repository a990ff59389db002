/**
 * Who passed a gate visit, read from a task record. Every channel answers a decision that came
 * too late (a double click, a second channel, an old Slack message) with the same words:
 * "already decided by <by> via <via>". Pure: a record in, a decision out.
 */
import type { Gate } from '../core/bus/messages.js';
import { StagegateError } from '../core/errors.js';
import { effectivePolicy, tallyApprovals } from '../core/policy.js';
import { deciderOf } from './gate-policy.js';
import { GATE_STATES, type Decision, type TaskRecord } from '../core/task-record.js';

export type DecidedVisit = Pick<Decision, 'gate' | 'visit' | 'decision' | 'by' | 'via' | 'at'> & {
  comment?: string;
  /** The task's state when this was read. */
  state: string;
};

/** A decision that arrived for a gate visit someone else had already decided. Callers answer 409 / "already decided". */
export class GateAlreadyDecided extends StagegateError {
  override name = 'GateAlreadyDecided';
  readonly decided: DecidedVisit;

  constructor(taskId: string, decided: DecidedVisit) {
    super(
      'TASK_NOT_AT_GATE',
      `task ${taskId} is ${decided.state}: its ${decided.gate} gate was already decided by ${decided.by} via ${decided.via} (${decided.decision === 'approve' ? 'approved' : 'rejected'}); nothing changed`,
      { taskId, details: { decided } },
    );
    this.decided = decided;
  }
}

export function isWaitingAtVisit(record: TaskRecord, gate: Gate, visit: number): boolean {
  return record.state === GATE_STATES[gate] && record.context.gateVisits[gate] === visit;
}

/**
 * The decision that ended a gate visit: its reject, or the approval that made the count.
 * Undefined while the task still waits at that visit, and for a visit ended otherwise (a cancel).
 */
export function decidingDecision(record: TaskRecord, gate: Gate, visit: number): DecidedVisit | undefined {
  if (visit < 1 || isWaitingAtVisit(record, gate, visit)) return undefined;
  const counted = record.context.decisions.filter((d) => d.gate === gate && d.visit === visit && d.counted);
  const last = counted.at(-1);
  if (last === undefined) return undefined;
  if (last.decision === 'approve' && last.via !== 'policy' && !approvalsPassed(record, gate, counted)) return undefined;
  return {
    gate,
    visit,
    decision: last.decision,
    by: last.by,
    via: last.via,
    at: last.at,
    state: record.state,
    ...(last.comment === undefined ? {} : { comment: last.comment }),
  };
}

/**
 * Whether a visit's approvals satisfied its policy, judged as the orchestrator judged them
 * (distinct identities, separation of duties), under the gate's policy, its escalation group or
 * the security group: a past visit does not say which was in force, and any of them passed it.
 */
function approvalsPassed(record: TaskRecord, gate: Gate, counted: Decision[]): boolean {
  const approvals = counted.filter((d) => d.decision === 'approve').map(deciderOf);
  const { policies, spec } = record.context;
  const judgedBy = [false, true].flatMap((escalated) => [false, true].map((blocked) => effectivePolicy(policies, gate, escalated, blocked)));
  return judgedBy.some((policy) => tallyApprovals(policy, approvals, spec.submittedBy).satisfied);
}

/** The most recent gate visit that was decided, for a decision that named no gate. */
export function lastDecidedGate(record: TaskRecord): DecidedVisit | undefined {
  for (const d of [...record.context.decisions].reverse()) {
    if (!d.counted) continue;
    const decided = decidingDecision(record, d.gate, d.visit);
    if (decided !== undefined) return decided;
  }
  return undefined;
}
