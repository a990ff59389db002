/**
 * Who may pass a gate. A policy is copied into the task when it is submitted, so every
 * orchestrator judges a decision by the same rules, and a guard reads only the task.
 */
import { z } from 'zod';

export const GatePolicy = z.object({
  /** Principals allowed to decide; `*` allows anyone. */
  approvers: z.array(z.string().min(1)).min(1, 'expected at least one approver'),
  /** Distinct approvals needed to pass. */
  required: z.number().int().positive().default(1),
  /** Pass on arrival, recorded as a decision by the policy itself. */
  autoApprove: z.boolean().default(false),
});
export type GatePolicy = z.infer<typeof GatePolicy>;

export const GatePolicies = z.object({
  plan: GatePolicy,
  review: GatePolicy,
  deploy: GatePolicy,
  /** The command gate; when absent, the deploy gate's policy decides commands too. */
  command: GatePolicy.optional(),
});
export type GatePolicies = z.infer<typeof GatePolicies>;

export function policyFor(policies: GatePolicies, gate: 'plan' | 'review' | 'deploy' | 'command'): GatePolicy {
  return gate === 'command' ? (policies.command ?? policies.deploy) : policies[gate];
}

export function isAllowedApprover(policy: GatePolicy, principal: string): boolean {
  return policy.approvers.includes('*') || policy.approvers.includes(principal);
}
