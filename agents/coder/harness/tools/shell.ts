/**
 * shell: runs a command in the worktree, inside the sandbox. An argv runs without a shell; a
 * string runs through `sh -c`. The output keeps the head and the tail with the middle elided
 * past `outputLimit`, and starts with the exit code (or that the command timed out and was
 * killed with everything it started). A command that matches a `requireApproval` pattern and
 * was not approved yet is not run: the loop gets a `needs-approval` control and pauses the task.
 *
 * `isError` means the call could not run; a command that ran and exited non-zero is an
 * ordinary result, its exit code in the output.
 */
import { stat } from 'node:fs/promises';
import { z } from 'zod';
import { formatArgv } from '../../../../core/exec/run-command.js';
import type { ToolContext, ToolOutcome } from '../tool-types.js';
import { findApprovalPattern } from './approval.js';
import { toolError, type ToolSpec } from './define-tool.js';
import { resolveToolPath, worktreeRoot } from './resolve-tool-path.js';

export const ShellArgs = z.object({
  command: z
    .union([z.array(z.string()).min(1), z.string().min(1)])
    .describe("An argv such as ['npm', 'test'], run without a shell, or a string run with sh -c (for pipes, &&, redirections)."),
  workdir: z.string().min(1).nullable().describe('Directory to run in, relative to the worktree root; null for the root.'),
  timeoutMs: z.number().int().min(1).nullable().describe("Timeout in milliseconds; null for the worker's default, which is also the most allowed."),
});
export type ShellArgs = z.infer<typeof ShellArgs>;

export const shellTool: ToolSpec<typeof ShellArgs> = {
  name: 'shell',
  description:
    'Runs a command in the worktree, in a sandbox: no network (unless the task allows named hosts, reached through the proxy in HTTPS_PROXY), only the worktree and a private /tmp are writable, .git is read-only, HOME is /tmp. Returns the exit code and the output (long output keeps its head and tail). Some commands (such as pushing or installing packages) first need a human\'s approval: the task then pauses, and the command runs once someone approves it.',
  args: ShellArgs,
  execute: runShell,
};

/** The command as the approval gate and the human see it, and as `approvedCommands` lists it. */
export function commandText(command: string | readonly string[]): string {
  return typeof command === 'string' ? command.trim() : formatArgv(command);
}

async function runShell(args: ShellArgs, ctx: ToolContext): Promise<ToolOutcome> {
  const root = await worktreeRoot(ctx.worktree);
  const workdir = await resolveToolPath(root, ctx.worktree, args.workdir ?? '.');
  const isDirectory = await stat(workdir.path).then(
    (stats) => stats.isDirectory(),
    () => false,
  );
  if (!isDirectory) return toolError(`workdir '${workdir.display}' is not a directory of the worktree`);

  const text = commandText(args.command);
  const pattern = ctx.approvedCommands.includes(text) ? undefined : findApprovalPattern(text, ctx.requireApproval, ctx.log);
  if (pattern !== undefined) {
    return {
      isError: false,
      output: `this command needs a human's approval before it runs (it matches the requireApproval pattern '${pattern}'); the task pauses until someone decides, and the command runs if they approve it`,
      control: { kind: 'needs-approval', command: text, pattern },
    };
  }

  const timeoutMs = Math.min(args.timeoutMs ?? ctx.shellTimeoutMs, ctx.shellTimeoutMs);
  const result = await ctx.sandbox.run(args.command, { writableDir: root, cwd: workdir.path, timeoutMs, outputLimit: ctx.outputLimit });
  const status = result.timedOut
    ? `timed out after ${timeoutMs} ms: the command and every process it started were killed`
    : `exit code ${result.exitCode ?? 'none (killed by a signal)'}`;
  return { isError: false, output: `${status}\n${result.output === '' ? '(no output)' : result.output}` };
}
