/**
 * Whether the approvals given at one visit to a gate satisfy its policy: enough distinct
 * approvers among those the policy names, and, under separation of duties, at least one who
 * is not the person who submitted the task.
 */
import type { GatePolicy } from '../policy.js';
import { identityOf, isAllowedApprover, submitterIdentity, type Decider } from './principals.js';

export interface GateTally {
  /** Distinct approvers whose approval counts under the policy. */
  approvals: number;
  required: number;
  satisfied: boolean;
  /** What is still missing, in words, when not satisfied. */
  missing?: string;
}

/**
 * `approvals` are the counted approvals of the current visit. Only those whose decider the
 * policy names are tallied, so after an escalation only the escalation group's count.
 */
export function tallyApprovals(policy: GatePolicy, approvals: readonly Decider[], submittedBy: string): GateTally {
  const identities = new Set(approvals.filter((d) => isAllowedApprover(policy.approvers, d)).map(identityOf));
  const required = policy.required;
  const submitter = submitterIdentity(submittedBy);
  const enough = identities.size >= required;
  const independent = !policy.separationOfDuties || [...identities].some((id) => id !== submitter);
  if (enough && independent) return { approvals: identities.size, required, satisfied: true };
  const missing = !enough
    ? `${identities.size} of ${required} approvals; ${required - identities.size} more needed`
    : `${submittedBy} submitted the task and cannot be its only approver (separation of duties): an approval by someone else is needed`;
  return { approvals: identities.size, required, satisfied: false, missing };
}
