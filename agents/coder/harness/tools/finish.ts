/**
 * finish: the coder is done; its summary goes to the reviewer with the change, and its answers
 * (one per review comment it was given with an id) become the replies in those threads.
 */
import { z } from 'zod';
import { ReviewAnswer } from '../../../../core/bus/messages.js';
import type { ToolOutcome } from '../tool-types.js';
import type { ToolSpec } from './define-tool.js';

export const FinishArgs = z.object({
  summary: z.string().min(1).describe('What you changed and why, and how you checked it, for the reviewer.'),
  // Nullable for strict function calling; a call without it (older scripts) parses as null.
  answers: z
    .array(
      ReviewAnswer.extend({
        commentId: ReviewAnswer.shape.commentId.describe('The id of the review comment, as given: [comment <id>].'),
        status: ReviewAnswer.shape.status.describe('addressed: the change does what the comment asks; declined: it does not.'),
        reason: ReviewAnswer.shape.reason.describe('Why you declined it, or in a few words what you did; the reviewer reads it in the thread.'),
      }),
    )
    .nullable()
    .default(null)
    .describe('One answer per review comment that has an id; null when there are none.'),
});
export type FinishArgs = z.infer<typeof FinishArgs>;

export const finishTool: ToolSpec<typeof FinishArgs> = {
  name: 'finish',
  description: 'Ends your work on the task when the change is complete and checked. The summary goes to the reviewer; each answer is posted in its review comment\'s thread.',
  args: FinishArgs,
  execute: finish,
};

function finish(args: FinishArgs): Promise<ToolOutcome> {
  return Promise.resolve({ isError: false, output: 'finished', control: { kind: 'finish', summary: args.summary, ...(args.answers === null ? {} : { answers: args.answers }) } });
}
