/**
 * The repository's test, lint and build commands, detected rather than guessed, from the default
 * branch's tip (a task's branch cannot change which command judges it):
 *
 * 1. the task's own commands (`stagegate submit --test-command`, or `.github/stagegate.yml`) win;
 * 2. else a `package.json` script, run with the package manager its lockfile names
 *    (package-lock.json: npm, pnpm-lock.yaml: pnpm, yarn.lock: yarn, bun.lockb or bun.lock: bun;
 *    with no lockfile, the `packageManager` field, else npm);
 * 3. else a `Makefile` target (`make test`);
 * 4. else a line in an instruction file that names it: `Test: \`pytest -q\``, `- Lint command: \`ruff check .\``.
 */
import { z } from 'zod';
import type { TaskSpec } from '../bus/messages.js';
import { pathsAt, readFilesAt } from './files-at.js';
import { INSTRUCTION_FILES } from './instructions.js';

export const CommandKind = z.enum(['test', 'lint', 'build']);
export type CommandKind = z.infer<typeof CommandKind>;

export const PackageManager = z.enum(['npm', 'pnpm', 'yarn', 'bun']);
export type PackageManager = z.infer<typeof PackageManager>;

export type RepoCommands = Partial<Record<CommandKind, string>>;

export interface DetectedCommands {
  commands: RepoCommands;
  packageManager: PackageManager | undefined;
  /** Where each command was found, for the log: `package.json`, `Makefile`, `AGENTS.md`. */
  sources: Partial<Record<CommandKind, string>>;
}

const LOCKFILES: ReadonlyArray<readonly [string, PackageManager]> = [
  ['package-lock.json', 'npm'],
  ['pnpm-lock.yaml', 'pnpm'],
  ['yarn.lock', 'yarn'],
  ['bun.lockb', 'bun'],
  ['bun.lock', 'bun'],
];

const PackageJson = z.object({
  scripts: z.record(z.string(), z.string()).optional(),
  packageManager: z.string().optional(),
});

export async function detectCommands(dir: string, base: string): Promise<DetectedCommands> {
  const rev = `origin/${base}`;
  const lockfiles = await pathsAt(dir, rev, LOCKFILES.map(([file]) => file));
  const [pkgFile, makefile] = await Promise.all([readFilesAt(dir, rev, ['package.json']), readFilesAt(dir, rev, ['Makefile'])]);
  const pkg = pkgFile[0] === undefined ? undefined : PackageJson.safeParse(safeJson(pkgFile[0].text)).data;
  const packageManager =
    pkg === undefined ? undefined : (LOCKFILES.find(([file]) => lockfiles.has(file))?.[1] ?? PackageManager.safeParse(pkg.packageManager?.split('@')[0]).data ?? 'npm');
  const declared = declaredInInstructions(await readFilesAt(dir, rev, INSTRUCTION_FILES));

  const commands: RepoCommands = {};
  const sources: DetectedCommands['sources'] = {};
  for (const kind of CommandKind.options) {
    const found =
      (packageManager !== undefined && pkg?.scripts?.[kind] !== undefined ? { command: scriptCommand(packageManager, kind), source: 'package.json' } : undefined) ??
      (makefile[0] !== undefined && hasMakeTarget(makefile[0].text, kind) ? { command: `make ${kind}`, source: 'Makefile' } : undefined) ??
      declared[kind];
    if (found === undefined) continue;
    commands[kind] = found.command;
    sources[kind] = found.source;
  }
  return { commands, packageManager, sources };
}

/** The task's own commands over the detected ones. */
export function commandsFor(spec: Pick<TaskSpec, 'testCommand' | 'lintCommand' | 'buildCommand'>, detected: RepoCommands): RepoCommands {
  const own: RepoCommands = {
    ...(spec.testCommand === undefined ? {} : { test: spec.testCommand }),
    ...(spec.lintCommand === undefined ? {} : { lint: spec.lintCommand }),
    ...(spec.buildCommand === undefined ? {} : { build: spec.buildCommand }),
  };
  return { ...detected, ...own };
}

function scriptCommand(pm: PackageManager, script: CommandKind): string {
  // `bun test` is bun's own test runner, not the script; the others run the script for `test`.
  if (script === 'test' && pm !== 'bun') return `${pm} test`;
  return `${pm} run ${script}`;
}

/** `test:` as a rule, not `test := …` or `test ?= …` (variables). */
function hasMakeTarget(makefile: string, target: CommandKind): boolean {
  return new RegExp(`^${target}\\s*:(?![:=])`, 'm').test(makefile);
}

const DECLARED = /^[ \t]*(?:[-*][ \t]+)?(?:\*\*)?(test|lint|build)(?:[ \t]+command)?(?::\*\*|\*\*:|:)[ \t]*`([^`\n]+)`[ \t]*\.?[ \t]*$/gim;

/** The first `Test: \`…\`` style line for each kind, in the files' order. */
function declaredInInstructions(files: ReadonlyArray<{ path: string; text: string }>): Partial<Record<CommandKind, { command: string; source: string }>> {
  const found: Partial<Record<CommandKind, { command: string; source: string }>> = {};
  for (const file of files) {
    for (const match of file.text.matchAll(DECLARED)) {
      const kind = CommandKind.safeParse(match[1]?.toLowerCase()).data;
      const command = match[2]?.trim();
      if (kind !== undefined && command !== undefined && command !== '' && found[kind] === undefined) found[kind] = { command, source: file.path };
    }
  }
  return found;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
