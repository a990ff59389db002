/**
 * apply_patch: the Codex-format patch engine, all or nothing. Success lists each file as
 * A (added), M (modified), D (deleted) or R (renamed); a refusal says which file and hunk failed
 * and why, and that nothing was changed. Paths into the repository's `.git` are refused too:
 * git would later run what a patch wrote there (hooks, config) outside the sandbox.
 */
import { z } from 'zod';
import { StagegateError, isStagegateError } from '../../../../core/errors.js';
import { applyPatch, parsePatch } from '../../patch/index.js';
import { resolveInside } from '../../patch/resolve-inside.js';
import type { ToolContext, ToolOutcome } from '../tool-types.js';
import { toolError, type ToolSpec } from './define-tool.js';
import { isInGitDir, worktreeRoot } from './resolve-tool-path.js';

export const ApplyPatchArgs = z.object({
  patch: z
    .string()
    .min(1)
    .describe("The whole patch, from '*** Begin Patch' to '*** End Patch', with paths relative to the worktree root."),
});
export type ApplyPatchArgs = z.infer<typeof ApplyPatchArgs>;

export const applyPatchTool: ToolSpec<typeof ApplyPatchArgs> = {
  name: 'apply_patch',
  description: [
    'Edits files with a patch in the apply_patch format. All or nothing: if any part does not apply, nothing is changed.',
    '*** Begin Patch',
    '*** Add File: path     (then every line of the new file, each prefixed with +)',
    '*** Delete File: path',
    '*** Update File: path  (optionally followed by *** Move to: new/path)',
    '@@ optional anchor line, e.g. a function signature',
    ' context line (unchanged, prefixed with a space; about 3 before and after each change)',
    '-removed line',
    '+added line',
    '*** End Patch',
  ].join('\n'),
  args: ApplyPatchArgs,
  execute: applyPatchTo,
};

async function applyPatchTo(args: ApplyPatchArgs, ctx: ToolContext): Promise<ToolOutcome> {
  const root = await worktreeRoot(ctx.worktree);
  try {
    await refuseGitDir(root, args.patch);
    const applied = await applyPatch(args.patch, { cwd: root });
    const lines = [
      ...applied.added.map((file) => `A ${file}`),
      ...applied.modified.map((file) => `M ${file}`),
      ...applied.deleted.map((file) => `D ${file}`),
      ...applied.moved.map(({ from, to }) => `R ${from} -> ${to}`),
    ];
    return { isError: false, output: ['patch applied:', ...lines].join('\n') };
  } catch (err) {
    if (isStagegateError(err, 'PATCH_INVALID') || isStagegateError(err, 'PATCH_REJECTED') || isStagegateError(err, 'PATH_ESCAPE')) {
      return toolError(`the patch was not applied, nothing was changed: ${err.message}`);
    }
    throw err;
  }
}

async function refuseGitDir(root: string, patch: string): Promise<void> {
  for (const operation of parsePatch(patch)) {
    const paths = operation.type === 'update' && operation.moveTo !== undefined ? [operation.path, operation.moveTo] : [operation.path];
    for (const patchPath of paths) {
      const target = await resolveInside(root, patchPath);
      if (isInGitDir(root, target.path)) {
        throw new StagegateError('PATH_ESCAPE', `refused path '${patchPath}': the repository's .git directory is not editable`, {
          details: { path: patchPath },
        });
      }
    }
  }
}
