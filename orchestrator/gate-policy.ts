/**
 * A gate's policy applied to one task: which policy is in force at the current visit (its own,
 * or the escalation group's), which approvals count, what a decision lacks. Pure reads of the
 * task's context, shared by the statechart's guards, the audit answer and `stagegate status`.
 */
import { Gate, type GateDecide, type GateStatus, type InboxMessage } from '../core/bus/messages.js';
import {
  autoApprovalFor,
  effectivePolicy,
  identityOf,
  isAllowedApprover,
  tallyApprovals,
  type AutoApproval,
  type Decider,
  type GatePolicy,
  type GateTally,
} from '../core/policy.js';
import { GATE_STATES, type Decision, type GateVisit, type TaskContext, type TaskState } from '../core/task-record.js';

/** The gate's visit record when that visit is the current one, else undefined. */
export function openVisit(context: TaskContext, gate: Gate): GateVisit | undefined {
  const visit = context.gateVisit;
  return visit !== null && visit.gate === gate && visit.visit === context.gateVisits[gate] ? visit : undefined;
}

export function isEscalated(context: TaskContext, gate: Gate): boolean {
  return (openVisit(context, gate)?.escalatedAt ?? null) !== null;
}

/** The policy the gate is judged by now. */
export function policyInForce(context: TaskContext, gate: Gate, escalated = isEscalated(context, gate)): GatePolicy {
  return effectivePolicy(context.policies, gate, escalated);
}

/** Approvals recorded as counted at the gate's current visit. */
export function countedApprovals(context: TaskContext, gate: Gate): Decision[] {
  const visit = context.gateVisits[gate];
  return context.decisions.filter((d) => d.gate === gate && d.visit === visit && d.decision === 'approve' && d.counted);
}

export function deciderOf(event: Pick<GateDecide, 'by' | 'via' | 'principal'>): Decider {
  return { by: event.by, via: event.via, ...(event.principal === undefined ? {} : { principal: event.principal }) };
}

/** The tally at the current visit, with `extra` (a decision being judged) added. */
export function tallyGate(context: TaskContext, gate: Gate, options: { extra?: Decider; escalated?: boolean } = {}): GateTally {
  const approvals: Decider[] = countedApprovals(context, gate).map(deciderOf);
  if (options.extra !== undefined) approvals.push(options.extra);
  return tallyApprovals(policyInForce(context, gate, options.escalated), approvals, context.spec.submittedBy);
}

/** Why a decision cannot count at this gate, or undefined when it can. */
export function refusalOf(context: TaskContext, gate: Gate, event: InboxMessage): string | undefined {
  if (event.type !== 'gate.decide') return 'not a decision';
  if (event.gate !== gate) return `the task is waiting at the ${gate} gate, not the ${event.gate} gate`;
  if (event.visit !== undefined && event.visit !== context.gateVisits[gate]) {
    return `this decision was for an earlier visit of the ${gate} gate (visit ${event.visit}; now visit ${context.gateVisits[gate]})`;
  }
  const decider = deciderOf(event);
  const policy = policyInForce(context, gate);
  if (!isAllowedApprover(policy.approvers, decider)) {
    const escalated = isEscalated(context, gate) ? ' (escalated: the escalation group decides)' : '';
    return `${event.by} is not an approver for the ${gate} gate${escalated}`;
  }
  if (event.decision === 'approve') {
    const who = identityOf(decider);
    if (countedApprovals(context, gate).some((d) => identityOf(deciderOf(d)) === who)) {
      return `${event.by} has already approved this gate`;
    }
  }
  return undefined;
}

export function autoApprovalAt(context: TaskContext, gate: Gate): AutoApproval | undefined {
  return autoApprovalFor(policyInForce(context, gate), context.facts);
}

/** The gate the task waits at and how far its policy is from satisfied; undefined off a gate. */
export function gateStatusOf(state: TaskState, context: TaskContext): GateStatus | undefined {
  const gate = Gate.options.find((g) => GATE_STATES[g] === state);
  if (gate === undefined) return undefined;
  const visit = openVisit(context, gate);
  const tally = tallyGate(context, gate);
  return {
    gate,
    visit: context.gateVisits[gate],
    approvals: tally.approvals,
    required: tally.required,
    approvers: policyInForce(context, gate).approvers,
    escalated: isEscalated(context, gate),
    ...(tally.missing === undefined ? {} : { missing: tally.missing }),
    timers: visit?.timers ?? [],
  };
}
