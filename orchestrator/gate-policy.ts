/**
 * A gate's policy applied to one task: which policy is in force at the current visit (its own,
 * or the escalation group's), which approvals count, what a decision lacks. Pure reads of the
 * task's context, shared by the statechart's guards, the audit answer and `stagegate status`.
 */
import { Gate, isBlockingFinding, type GateDecide, type GateStatus, type InboxMessage, type SecurityFinding } from '../core/bus/messages.js';
import {
  autoApprovalFor,
  effectivePolicy,
  identityOf,
  isAllowedApprover,
  policyFor,
  tallyApprovals,
  type AutoApproval,
  type Decider,
  type GatePolicy,
  type GateTally,
} from '../core/policy.js';
import { describeProtectedChanges, protectedChangesIn } from '../core/security/protected-paths.js';
import { GATE_STATES, type Decision, type GateVisit, type TaskContext, type TaskState } from '../core/task-record.js';

/** The gate's visit record when that visit is the current one, else undefined. */
export function openVisit(context: TaskContext, gate: Gate): GateVisit | undefined {
  const visit = context.gateVisit;
  return visit !== null && visit.gate === gate && visit.visit === context.gateVisits[gate] ? visit : undefined;
}

export function isEscalated(context: TaskContext, gate: Gate): boolean {
  return (openVisit(context, gate)?.escalatedAt ?? null) !== null;
}

/** High and critical findings of the latest security review. */
export function blockingFindings(context: TaskContext): SecurityFinding[] {
  return context.security.findings.filter(isBlockingFinding);
}

/**
 * The deploy gate is held by blocking findings: the chart sends them to the coder once first,
 * so a task reaches the gate with some only when that round did not clear them.
 */
export function isSecurityBlocked(context: TaskContext, gate: Gate): boolean {
  return gate === 'deploy' && blockingFindings(context).length > 0;
}

/** The policy the gate is judged by now. */
export function policyInForce(context: TaskContext, gate: Gate, escalated = isEscalated(context, gate)): GatePolicy {
  return effectivePolicy(context.policies, gate, escalated, isSecurityBlocked(context, gate));
}

function securityGroupOf(context: TaskContext): string {
  const approvers = context.policies.security?.approvers ?? [];
  return approvers.length === 0 ? 'the security group (gates.security.approvers, not configured)' : approvers.join(', ');
}

/** Who may decide a gate held by blocking findings: rejecting stays with its own approvers too; overriding needs the security group and a reason. */
function securityRefusal(context: TaskContext, gate: Gate, event: GateDecide, decider: Decider): string | undefined {
  const security = context.policies.security?.approvers ?? [];
  if (event.decision === 'reject') {
    const own = effectivePolicy(context.policies, gate, isEscalated(context, gate)).approvers;
    return isAllowedApprover([...own, ...security], decider) ? undefined : `${event.by} is not an approver for the ${gate} gate`;
  }
  if (!isAllowedApprover(security, decider)) return `high-severity security findings: only ${securityGroupOf(context)} can override, with a reason`;
  if ((event.comment ?? '').trim() === '') return "high-severity security findings: an override needs a reason (the decision's comment)";
  return undefined;
}

/**
 * Approvals recorded as counted at the gate's current visit. At the deploy gate an approval is
 * pinned to the branch head it was given for: once the branch moves it is stale and counts no more.
 */
export function countedApprovals(context: TaskContext, gate: Gate): Decision[] {
  const visit = context.gateVisits[gate];
  return context.decisions.filter((d) => d.gate === gate && d.visit === visit && d.decision === 'approve' && d.counted && !isStale(context, d));
}

/** Whether approvals at this gate are pinned to the branch head. */
export function isPinnedGate(gate: Gate): boolean {
  return gate === 'deploy';
}

function isStale(context: TaskContext, d: Decision): boolean {
  return isPinnedGate(d.gate) && context.head !== null && d.sha !== context.head;
}

/** Approvals of the gate's current visit that the branch moved past: for the people who gave them to hear. */
export function staleApprovals(context: TaskContext, gate: Gate): Decision[] {
  const visit = context.gateVisits[gate];
  return context.decisions.filter((d) => d.gate === gate && d.visit === visit && d.decision === 'approve' && d.counted && isStale(context, d));
}

/** The head a sha names: the head itself when `sha` is it or a prefix of it (7 digits at least), else undefined. */
export function headNamedBy(context: TaskContext, sha: string): string | undefined {
  const head = context.head;
  return head !== null && sha.length >= 7 && head.startsWith(sha.toLowerCase()) ? head : undefined;
}

/** The first 7 digits of a commit, as people read them. */
export function shortSha(sha: string): string {
  return sha.slice(0, 7);
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
  if (event.decision === 'approve' && isPinnedGate(gate) && event.sha !== undefined && context.head !== null && headNamedBy(context, event.sha) === undefined) {
    return `this approval is for ${shortSha(event.sha)}, but the branch's head is ${shortSha(context.head)}: only an approval of the current head counts`;
  }
  const decider = deciderOf(event);
  const policy = policyInForce(context, gate);
  if (isSecurityBlocked(context, gate)) {
    const refusal = securityRefusal(context, gate, event, decider);
    if (refusal !== undefined) return refusal;
  } else if (!isAllowedApprover(policy.approvers, decider)) {
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
  if (autoApproveRefusal(context, gate) !== undefined) return undefined;
  return autoApprovalFor(policyInForce(context, gate), context.facts);
}

/**
 * Why no auto-approval may pass this gate for this change, whatever the policy says: blocking
 * security findings, a head pushed after the review, or a change to CI workflows, deploy
 * configuration or Stagegate's own.
 */
export function autoApproveRefusal(context: TaskContext, gate: Gate): string | undefined {
  if (gate !== 'review' && gate !== 'deploy') return undefined;
  if (isSecurityBlocked(context, gate)) return `high-severity security findings: only ${securityGroupOf(context)} can pass this gate`;
  // The facts describe the reviewed commit: rules decide nothing about a head pushed since.
  const { head, facts } = context;
  if (head !== null && facts.commit !== null && facts.commit !== head) return `never auto-approved: the branch moved to ${shortSha(head)} after the review, so a person decides`;
  const touched = protectedChangesIn(context.facts.changedFiles ?? [], context.policies.security?.protectedPaths ?? []);
  return touched.length === 0 ? undefined : `never auto-approved: the change touches ${describeProtectedChanges(touched)}`;
}

/** The gate the task waits at and how far its policy is from satisfied; undefined off a gate. */
export function gateStatusOf(state: TaskState, context: TaskContext): GateStatus | undefined {
  const gate = Gate.options.find((g) => GATE_STATES[g] === state);
  if (gate === undefined) return undefined;
  const visit = openVisit(context, gate);
  const tally = tallyGate(context, gate);
  const blocking = isSecurityBlocked(context, gate) ? blockingFindings(context).length : 0;
  const refused = policyFor(context.policies, gate).autoApprove === false ? undefined : autoApproveRefusal(context, gate);
  const missing =
    tally.missing === undefined || blocking === 0
      ? tally.missing
      : `${blocking} high-severity security finding${blocking === 1 ? '' : 's'}: an override by ${securityGroupOf(context)}, with a reason (${tally.missing})`;
  return {
    gate,
    visit: context.gateVisits[gate],
    approvals: tally.approvals,
    required: tally.required,
    approvers: policyInForce(context, gate).approvers,
    escalated: isEscalated(context, gate),
    ...(missing === undefined ? {} : { missing }),
    ...(refused === undefined ? {} : { autoApproveRefused: refused }),
    ...(blocking === 0 ? {} : { securityBlock: { findings: blocking } }),
    timers: visit?.timers ?? [],
  };
}
