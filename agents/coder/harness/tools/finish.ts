/** finish: the coder is done; its summary goes to the reviewer with the change. */
import { z } from 'zod';
import type { ToolOutcome } from '../tool-types.js';
import type { ToolSpec } from './define-tool.js';

export const FinishArgs = z.object({
  summary: z.string().min(1).describe('What you changed and why, and how you checked it, for the reviewer.'),
});
export type FinishArgs = z.infer<typeof FinishArgs>;

export const finishTool: ToolSpec<typeof FinishArgs> = {
  name: 'finish',
  description: 'Ends your work on the task when the change is complete and checked. The summary goes to the reviewer.',
  args: FinishArgs,
  execute: finish,
};

function finish(args: FinishArgs): Promise<ToolOutcome> {
  return Promise.resolve({ isError: false, output: 'finished', control: { kind: 'finish', summary: args.summary } });
}
