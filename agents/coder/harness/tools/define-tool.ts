/** The shape every tool file exports; the registry erases the argument type behind a parse. */
import type { z } from 'zod';
import type { ToolContext, ToolOutcome } from '../tool-types.js';

export interface ToolSpec<S extends z.ZodType> {
  name: string;
  /** Sent to the model as is; byte-identical every turn, so it says nothing that varies. */
  description: string;
  args: S;
  /**
   * Runs a call whose arguments already parsed. A call the tool cannot do returns an error
   * outcome, or throws a StagegateError (or a file-system error); `executeToolCall` turns those
   * into an error result the model reads.
   */
  execute(args: z.output<S>, ctx: ToolContext): Promise<ToolOutcome>;
}

export function toolError(message: string): ToolOutcome {
  return { isError: true, output: `error: ${message}` };
}
