/** list_files: the worktree's files (.gitignore respected), filtered by a glob, capped. */
import { z } from 'zod';
import type { ToolContext, ToolOutcome } from '../tool-types.js';
import type { ToolSpec } from './define-tool.js';
import { worktreeRoot } from './resolve-tool-path.js';
import { listWorktreeFiles } from './worktree-files.js';

export const MAX_LISTED = 500;

export const ListFilesArgs = z.object({
  glob: z
    .string()
    .min(1)
    .nullable()
    .describe("Glob relative to the worktree root, e.g. 'src/**/*.ts', '*.md' (any directory) or 'test' (everything under it); null for all files."),
});
export type ListFilesArgs = z.infer<typeof ListFilesArgs>;

export const listFilesTool: ToolSpec<typeof ListFilesArgs> = {
  name: 'list_files',
  description: `Lists the worktree's files, tracked or new, leaving out what .gitignore ignores; at most ${MAX_LISTED} per call.`,
  args: ListFilesArgs,
  execute: listFiles,
};

async function listFiles(args: ListFilesArgs, ctx: ToolContext): Promise<ToolOutcome> {
  const files = await listWorktreeFiles(await worktreeRoot(ctx.worktree), args.glob);
  if (files.length === 0) {
    return { isError: false, output: args.glob === null ? 'the worktree has no files' : `no files match '${args.glob}'` };
  }
  const shown = files.slice(0, MAX_LISTED);
  const more = files.length - shown.length;
  const footer = more > 0 ? `… and ${more} more files (${files.length} in all): narrow the glob to see them` : `${files.length} ${files.length === 1 ? 'file' : 'files'}`;
  return { isError: false, output: [...shown, footer].join('\n') };
}
