/**
 * The reviewer's reply: the Verdict, with `risk` required. The strict JSON schema sent to the
 * model requires it; a reply without it (an older scripted answer) parses as `medium`, so a
 * script written before risk levels existed still runs, and is never thought low-risk.
 */
import { z } from 'zod';
import { SecurityFinding, Verdict } from '../../core/bus/messages.js';
import { RiskLevel } from '../../core/policy.js';

const ReviewerVerdict = Verdict.extend({ risk: RiskLevel });

const DEFAULT_RISK: RiskLevel = 'medium';

export const ReviewerReply = z.preprocess(
  (value) => (typeof value === 'object' && value !== null && !('risk' in value) ? { ...value, risk: DEFAULT_RISK } : value),
  ReviewerVerdict,
);
export type ReviewerReply = z.infer<typeof ReviewerReply>;

/**
 * The security review's reply: findings as the bus carries them, less `source` (every one of
 * these is the model's). No defaults: a reply missing a field is repaired or fails the job.
 */
export const SecurityReply = z.object({
  summary: z.string(),
  findings: z.array(SecurityFinding.omit({ source: true })),
});
export type SecurityReply = z.infer<typeof SecurityReply>;
