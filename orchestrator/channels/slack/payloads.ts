/**
 * The parts of Slack's interactive payloads the channel reads, parsed at the boundary like any
 * other outside input; Bolt has verified the signature, not the shape.
 */
import { z } from 'zod';
import { CommitSha, Gate, TaskId } from '../../../core/bus/messages.js';

/**
 * What an Approve / Reject button carries: exactly which gate visit it decides, and at the deploy
 * gate the head it was shown for (an approval of it no longer counts once the branch moves).
 */
export const GateButtonValue = z.object({ taskId: TaskId, gate: Gate, visit: z.number().int().positive(), sha: CommitSha.optional() });
export type GateButtonValue = z.infer<typeof GateButtonValue>;

/**
 * The reason modal's private metadata: the button's value, where to answer, and the decision
 * the reason goes with (a rejection; or an override of security findings, which needs one).
 */
export const ReasonModalMetadata = GateButtonValue.extend({
  channel: z.string().min(1),
  decision: z.enum(['approve', 'reject']).default('reject'),
});
export type ReasonModalMetadata = z.infer<typeof ReasonModalMetadata>;

export const GateButtonClick = z.object({
  type: z.literal('block_actions'),
  user: z.object({ id: z.string().min(1) }),
  trigger_id: z.string().min(1),
  channel: z.object({ id: z.string().min(1) }),
  actions: z.array(z.object({ action_id: z.string(), value: z.string() })).min(1),
});
export type GateButtonClick = z.infer<typeof GateButtonClick>;

export const ReasonModalSubmission = z.object({
  type: z.literal('view_submission'),
  user: z.object({ id: z.string().min(1) }),
  view: z.object({
    private_metadata: z.string(),
    state: z.object({
      values: z.record(z.string(), z.record(z.string(), z.object({ value: z.string().nullish() }))),
    }),
  }),
});
export type ReasonModalSubmission = z.infer<typeof ReasonModalSubmission>;
