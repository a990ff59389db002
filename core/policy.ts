/**
 * Who may pass a gate, and when it passes on its own. A policy is copied into the task when it
 * is submitted, so every orchestrator judges a decision by the same rules, and a guard reads
 * only the task. The judging itself is in `policy/`: principals, quorum, auto-approval.
 */
import { z } from 'zod';
import { PERMISSIONS, PRINCIPAL_SYNTAX, parsePrincipal } from './policy/principals.js';

export const Principal = z.string().superRefine((text, ctx) => {
  const parsed = parsePrincipal(text);
  if ('error' in parsed) ctx.addIssue({ code: 'custom', message: `expected a principal such as ${PRINCIPAL_SYNTAX}: ${parsed.error}` });
});

export const Permission = z.enum(PERMISSIONS);
export type Permission = z.infer<typeof Permission>;

/** What the deciding channel verified about the decider; `principals.ts` matches on it. */
export const PrincipalFacts = z.object({
  teams: z.array(z.string().min(1)).optional(),
  permission: Permission.optional(),
  groups: z.array(z.string().min(1)).optional(),
});
export type PrincipalFacts = z.infer<typeof PrincipalFacts>;

export const RiskLevel = z.enum(['low', 'medium', 'high']);
export type RiskLevel = z.infer<typeof RiskLevel>;

/** Every condition given must hold; a fact the task does not have fails its condition. */
export const AutoApproveConditions = z
  .object({
    /** Every changed path matches one of these globs (picomatch, dotfiles included). */
    pathsMatch: z.array(z.string().min(1)).min(1).optional(),
    /** Added plus deleted lines of the change. */
    maxLinesChanged: z.number().int().nonnegative().optional(),
    /** The checks on the commit passed (for now: the tests the reviewer ran). */
    checksGreen: z.literal(true).optional(),
    verdict: z.literal('approve').optional(),
    /** The reviewer's risk level is at most this; a verdict without one counts as high. */
    maxRisk: RiskLevel.optional(),
  })
  .strict();
export type AutoApproveConditions = z.infer<typeof AutoApproveConditions>;

export const AutoApproveRule = z.object({
  /** Recorded as the decider: `policy:<name>`. */
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected a rule name of lower-case letters, digits and dashes'),
  when: AutoApproveConditions,
});
export type AutoApproveRule = z.infer<typeof AutoApproveRule>;

export const Escalation = z.object({
  approvers: z.array(Principal).min(1, 'expected at least one approver'),
  required: z.number().int().positive().default(1),
});
export type Escalation = z.infer<typeof Escalation>;

export const TimeoutAction = z.enum(['reject', 'cancel', 'escalate']);
export type TimeoutAction = z.infer<typeof TimeoutAction>;

/** Durations count from the moment the task reached the gate (the `sentAt` of the event that brought it). */
export const GateTimeout = z
  .object({
    /** Remind the approvers (the channels re-post, mentioning them) this long after the gate opened. */
    remindAfterMs: z.number().int().positive().optional(),
    /** Then, this long after the gate opened, do `onExpire`. */
    expireAfterMs: z.number().int().positive().optional(),
    onExpire: TimeoutAction.default('reject'),
    /** The approver group that decides an escalated gate (only with onExpire `escalate`). */
    escalateTo: Escalation.optional(),
  })
  .superRefine((t, ctx) => {
    if (t.remindAfterMs === undefined && t.expireAfterMs === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected remindAfterMs, expireAfterMs or both' });
    }
    if (t.remindAfterMs !== undefined && t.expireAfterMs !== undefined && t.remindAfterMs >= t.expireAfterMs) {
      ctx.addIssue({ code: 'custom', path: ['remindAfterMs'], message: 'expected a reminder before the gate expires' });
    }
    if (t.onExpire === 'escalate' && t.escalateTo === undefined) {
      ctx.addIssue({ code: 'custom', path: ['escalateTo'], message: "expected the approvers to escalate to (onExpire is 'escalate')" });
    }
  });
export type GateTimeout = z.infer<typeof GateTimeout>;

export const GatePolicy = z.object({
  /** Principals allowed to decide (see `policy/principals.ts`); `*` allows anyone. */
  approvers: z.array(Principal).min(1, 'expected at least one approver'),
  /** Distinct approvals needed to pass. */
  required: z.number().int().positive().default(1),
  /** The submitter's approval counts, but is never enough on its own. */
  separationOfDuties: z.boolean().optional(),
  /**
   * `true`: pass on arrival; a list of rules: pass on arrival when one rule's conditions hold.
   * Either way it is recorded as a decision by the policy (`policy:auto-approve`, `policy:<rule>`).
   */
  autoApprove: z
    .union([z.boolean(), z.array(AutoApproveRule).min(1)])
    .default(false)
    .refine((v) => typeof v === 'boolean' || new Set(v.map((r) => r.name)).size === v.length, 'expected distinct rule names'),
  timeout: GateTimeout.optional(),
});
export type GatePolicy = z.infer<typeof GatePolicy>;

/**
 * The security group: who may pass a deploy gate held by high-severity security findings (with
 * a reason), and the repository's own deploy configuration, never auto-approved.
 */
export const SecurityPolicy = z.object({
  approvers: z.array(Principal).min(1, 'expected at least one approver'),
  required: z.number().int().positive().default(1),
  /** Globs (picomatch, dotfiles included) of deploy configuration beyond the built-in ones. */
  protectedPaths: z.array(z.string().min(1)).default([]),
});
export type SecurityPolicy = z.infer<typeof SecurityPolicy>;

export const GatePolicies = z.object({
  plan: GatePolicy,
  review: GatePolicy,
  deploy: GatePolicy,
  /** The command gate; when absent, the deploy gate's policy decides commands too. */
  command: GatePolicy.optional(),
  /** Absent (a task submitted before there was one): nobody can override blocking findings. */
  security: SecurityPolicy.optional(),
});
export type GatePolicies = z.infer<typeof GatePolicies>;

export type PolicyGate = 'plan' | 'review' | 'deploy' | 'command';

/**
 * What the task knows about the change a gate decides on: the facts auto-approval rules read.
 * All of it describes `commit`; a new commit starts the facts afresh.
 */
export const GateFacts = z.object({
  commit: z.string().nullable(),
  changedFiles: z.array(z.string()).optional(),
  linesChanged: z.number().int().nonnegative().optional(),
  checksGreen: z.boolean().optional(),
  verdict: z.enum(['approve', 'request_changes']).optional(),
  risk: RiskLevel.optional(),
});
export type GateFacts = z.infer<typeof GateFacts>;

export function policyFor(policies: GatePolicies, gate: PolicyGate): GatePolicy {
  return gate === 'command' ? (policies.command ?? policies.deploy) : policies[gate];
}

/**
 * The policy a gate is judged by: its own, or its escalation group's once it has escalated; at a
 * deploy gate held by blocking security findings, the security group's, never auto-approved.
 */
export function effectivePolicy(policies: GatePolicies, gate: PolicyGate, escalated: boolean, securityBlocked = false): GatePolicy {
  const policy = policyFor(policies, gate);
  if (securityBlocked && gate === 'deploy') {
    return { ...policy, approvers: policies.security?.approvers ?? [], required: policies.security?.required ?? 1, autoApprove: false };
  }
  const to = policy.timeout?.escalateTo;
  if (!escalated || to === undefined) return policy;
  return { ...policy, approvers: to.approvers, required: to.required };
}

/** Every principal that may decide the gate at some point: channels look up teams and groups for these. */
export function principalsNamedFor(policies: GatePolicies, gate: PolicyGate): string[] {
  const policy = policyFor(policies, gate);
  const security = gate === 'deploy' ? (policies.security?.approvers ?? []) : [];
  return [...policy.approvers, ...(policy.timeout?.escalateTo?.approvers ?? []), ...security];
}

export type { Decider, DeciderChannel } from './policy/principals.js';
export { identityOf, isAllowedApprover, matchesPrincipal, parsePrincipal, submitterIdentity } from './policy/principals.js';
export { tallyApprovals, type GateTally } from './policy/quorum.js';
export { autoApprovalFor, type AutoApproval } from './policy/auto-approve.js';
