/** update_plan: the coder's list of steps, shown on the task as its progress. */
import { z } from 'zod';
import type { ToolContext, ToolOutcome } from '../tool-types.js';
import type { ToolSpec } from './define-tool.js';

export const UpdatePlanArgs = z.object({
  steps: z
    .array(
      z.object({
        step: z.string().min(1).describe('What the step does, in a short sentence.'),
        status: z.enum(['pending', 'in_progress', 'completed']),
      }),
    )
    .min(1)
    .max(50)
    .refine((steps) => steps.filter((step) => step.status === 'in_progress').length <= 1, 'at most one step can be in_progress'),
});
export type UpdatePlanArgs = z.infer<typeof UpdatePlanArgs>;

export const updatePlanTool: ToolSpec<typeof UpdatePlanArgs> = {
  name: 'update_plan',
  description: 'Replaces your plan: the whole list of steps, each pending, in_progress (at most one) or completed. The plan is shown to people as the progress of the task.',
  args: UpdatePlanArgs,
  execute: updatePlan,
};

async function updatePlan(args: UpdatePlanArgs, ctx: ToolContext): Promise<ToolOutcome> {
  await ctx.onPlanUpdate(args.steps);
  return { isError: false, output: 'plan updated' };
}
