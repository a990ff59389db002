/**
 * search: a regular expression over the worktree's files (those list_files lists), line by
 * line, as `file:line: text`. Capped in matches and line length; binary and very large files
 * are skipped and counted. The model writes the expression, and a backtracking one such as
 * `(a+)+$` can run for hours, so matching runs under a vm time limit and such a search ends
 * with an error instead of hanging the worker.
 */
import { lstat, readFile } from 'node:fs/promises';
import vm from 'node:vm';
import { z } from 'zod';
import { errorMessage } from '../../../../core/errors.js';
import { resolveInside } from '../../patch/resolve-inside.js';
import type { ToolContext, ToolOutcome } from '../tool-types.js';
import { toolError, type ToolSpec } from './define-tool.js';
import { worktreeRoot } from './resolve-tool-path.js';
import { listWorktreeFiles } from './worktree-files.js';

export const MAX_MATCHES = 200;
const MAX_SHOWN_CHARS = 300;
const MAX_FILE_BYTES = 2 * 1024 * 1024;
/** Text matched per time-limited vm call: large enough that the limit's overhead is negligible. */
const BATCH_CHARS = 4 * 1024 * 1024;
const TIME_LIMIT_MS = 10_000;

export const SearchArgs = z.object({
  pattern: z
    .string()
    .min(1)
    .describe('JavaScript regular expression, matched against each line; start it with (?i) to ignore case.'),
  glob: z.string().min(1).nullable().describe("Only files matching this glob (as in list_files), e.g. 'src/**/*.ts'; null for all files."),
});
export type SearchArgs = z.infer<typeof SearchArgs>;

export const searchTool: ToolSpec<typeof SearchArgs> = {
  name: 'search',
  description: `Searches the worktree's files (as list_files lists them) for a regular expression; answers file:line: text, at most ${MAX_MATCHES} matches.`,
  args: SearchArgs,
  execute: search,
};

export interface Match {
  file: string;
  line: number;
  text: string;
}

async function search(args: SearchArgs, ctx: ToolContext): Promise<ToolOutcome> {
  const regex = compile(args.pattern);
  if (typeof regex === 'string') return toolError(`invalid regular expression /${args.pattern}/: ${regex}`);
  const root = await worktreeRoot(ctx.worktree);
  const files = await listWorktreeFiles(root, args.glob);
  const matches: Match[] = [];
  const skipped = { large: 0, binary: 0 };
  const scanner = new TimedScanner(regex, matches);
  let batch: Array<{ file: string; text: string }> = [];
  let batchChars = 0;
  for (const file of files) {
    const text = await readSearchable(root, file, skipped);
    if (text === undefined) continue;
    batch.push({ file, text });
    batchChars += text.length;
    if (batchChars < BATCH_CHARS) continue;
    if (!scanner.scan(batch)) return tooSlow(args.pattern);
    if (matches.length > MAX_MATCHES) break;
    batch = [];
    batchChars = 0;
  }
  if (matches.length <= MAX_MATCHES && !scanner.scan(batch)) return tooSlow(args.pattern);
  return { isError: false, output: render(matches, files.length, skipped, args) };
}

/** A RegExp, or why the pattern is not one. A leading (?i), as ripgrep takes it, sets the `i` flag. */
function compile(pattern: string): RegExp | string {
  const ignoreCase = pattern.startsWith('(?i)');
  try {
    return new RegExp(ignoreCase ? pattern.slice(4) : pattern, ignoreCase ? 'i' : '');
  } catch (err) {
    return errorMessage(err);
  }
}

/**
 * Text of a regular file worth searching. Symbolic links are skipped (their target is listed,
 * or outside), and so is a path whose directories lead out of the worktree through a link:
 * git may still list a tracked file under a directory replaced by a link since.
 */
async function readSearchable(root: string, relative: string, skipped: { large: number; binary: number }): Promise<string | undefined> {
  const resolved = await resolveInside(root, relative).catch(() => undefined);
  if (resolved === undefined || resolved.isSymbolicLink) return undefined;
  const file = resolved.path;
  const stats = await lstat(file).catch(() => undefined);
  if (stats === undefined || !stats.isFile()) return undefined;
  if (stats.size > MAX_FILE_BYTES) {
    skipped.large += 1;
    return undefined;
  }
  const bytes = await readFile(file);
  if (bytes.subarray(0, 8_000).includes(0)) {
    skipped.binary += 1;
    return undefined;
  }
  return bytes.toString('utf8');
}

/** Runs the matching inside vm with a deadline shared by the whole search. */
export class TimedScanner {
  private readonly context = vm.createContext({ scan: () => undefined });
  private readonly script = new vm.Script('scan()');
  private readonly deadline: number;

  constructor(
    private readonly regex: RegExp,
    private readonly matches: Match[],
    timeLimitMs = TIME_LIMIT_MS,
  ) {
    this.deadline = Date.now() + timeLimitMs;
  }

  /** False when the time ran out. Stops one match past the cap, so the caller can tell there were more. */
  scan(batch: ReadonlyArray<{ file: string; text: string }>): boolean {
    this.context.scan = () => {
      for (const { file, text } of batch) {
        const lines = text.split('\n');
        for (let i = 0; i < lines.length; i++) {
          const line = lines[i] ?? '';
          const found = this.regex.exec(line);
          if (found === null) continue;
          this.matches.push({ file, line: i + 1, text: excerpt(line.replace(/\r$/, ''), found.index) });
          if (this.matches.length > MAX_MATCHES) return;
        }
      }
    };
    try {
      this.script.runInContext(this.context, { timeout: Math.max(1, this.deadline - Date.now()) });
      return true;
    } catch (err) {
      // The timeout error belongs to the vm context's realm, so it is no `instanceof Error` here.
      if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return false;
      throw err;
    }
  }
}

/** The line, or for a long one a window around the match. */
function excerpt(line: string, at: number): string {
  if (line.length <= MAX_SHOWN_CHARS) return line;
  const start = Math.max(0, Math.min(at - 100, line.length - MAX_SHOWN_CHARS));
  const end = start + MAX_SHOWN_CHARS;
  return `${start > 0 ? '…' : ''}${line.slice(start, end)}${end < line.length ? '…' : ''}`;
}

function render(matches: readonly Match[], fileCount: number, skipped: { large: number; binary: number }, args: SearchArgs): string {
  const notes: string[] = [];
  if (skipped.large > 0) notes.push(`${count(skipped.large, 'file')} over ${MAX_FILE_BYTES / 1024 / 1024} MB skipped`);
  if (skipped.binary > 0) notes.push(`${count(skipped.binary, 'binary file')} skipped`);
  const where = `${count(fileCount, 'file')}${args.glob === null ? '' : ` matching '${args.glob}'`}`;
  const skippedNote = notes.length === 0 ? '' : ` (${notes.join(', ')})`;
  if (matches.length === 0) return `no matches for /${args.pattern}/ in ${where}${skippedNote}`;
  const lines = matches.slice(0, MAX_MATCHES).map((match) => `${match.file}:${match.line}: ${match.text}`);
  const footer =
    matches.length > MAX_MATCHES
      ? `… stopped at ${MAX_MATCHES} matches: narrow the pattern or the glob${skippedNote}`
      : `${count(matches.length, 'match')} in ${where}${skippedNote}`;
  return [...lines, footer].join('\n');
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : noun.endsWith('ch') ? 'es' : 's'}`;
}

function tooSlow(pattern: string): ToolOutcome {
  return toolError(
    `searching for /${pattern}/ took longer than ${TIME_LIMIT_MS / 1000} s and was stopped; simplify the expression (nested quantifiers such as (a+)+ backtrack exponentially) or narrow the glob`,
  );
}
