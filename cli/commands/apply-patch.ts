/**
 * `stagegate apply-patch [--cwd DIR]`: applies a Codex-format patch read from stdin, all or
 * nothing, and prints one git-style line per change. Failures are thrown for cli/main.ts to report.
 */
import type { Command } from 'commander';
import { text } from 'node:stream/consumers';
import { z } from 'zod';
import { StagegateError } from '../../core/errors.js';
import { parseAt } from '../../core/parse.js';
import { applyPatch, type AppliedPatch } from '../../agents/coder/patch/index.js';

const ApplyPatchCommandOptions = z.object({ cwd: z.string().min(1).optional() });

export function registerApplyPatch(program: Command): void {
  program
    .command('apply-patch')
    .description('apply a patch in the OpenAI Codex apply_patch format, read from stdin; all or nothing')
    .option('--cwd <dir>', 'directory the patch paths are relative to (default: the current directory)')
    .addHelpText('after', '\nPrints one line per change: A added, M modified, D deleted, R renamed (old -> new).')
    .action(async (rawOptions: unknown) => {
      const options = parseAt(ApplyPatchCommandOptions, rawOptions, 'stagegate apply-patch options');
      const applied = await applyPatch(await readPatchFromStdin(), { cwd: options.cwd ?? process.cwd() });
      process.stdout.write(summarise(applied));
    });
}

async function readPatchFromStdin(): Promise<string> {
  // Waiting on a terminal would look like a hang; say what is missing instead.
  if (process.stdin.isTTY) {
    throw new StagegateError('PATCH_INVALID', 'no patch on stdin: pipe the patch into `stagegate apply-patch`');
  }
  return text(process.stdin);
}

function summarise(applied: AppliedPatch): string {
  const lines = [
    ...applied.added.map((file) => `A ${file}`),
    ...applied.modified.map((file) => `M ${file}`),
    ...applied.deleted.map((file) => `D ${file}`),
    ...applied.moved.map(({ from, to }) => `R ${from} -> ${to}`),
  ];
  return lines.map((line) => `${line}\n`).join('');
}
