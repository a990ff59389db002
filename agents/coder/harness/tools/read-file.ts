/**
 * read_file: a text file's lines, numbered, a page at a time. Long files are paged (the output
 * says how to ask for the next page) and very long lines cut, so one call never floods the
 * model's context; directories and binary files get an error that says what to use instead.
 */
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import type { ToolContext, ToolOutcome } from '../tool-types.js';
import { toolError, type ToolSpec } from './define-tool.js';
import { resolveToolPath, worktreeRoot } from './resolve-tool-path.js';

export const PAGE_LINES = 400;
const MAX_LINE_CHARS = 2_000;
const MAX_FILE_BYTES = 16 * 1024 * 1024;

export const ReadFileArgs = z.object({
  path: z.string().min(1).describe('File path, relative to the worktree root.'),
  startLine: z.number().int().min(1).nullable().describe('First line to show, counting from 1; null for the first line.'),
  endLine: z.number().int().min(1).nullable().describe(`Last line to show; null for a full page (${PAGE_LINES} lines).`),
});
export type ReadFileArgs = z.infer<typeof ReadFileArgs>;

export const readFileTool: ToolSpec<typeof ReadFileArgs> = {
  name: 'read_file',
  description: `Reads a text file of the worktree, with line numbers. Shows at most ${PAGE_LINES} lines per call; for a longer file, call again with startLine to read on.`,
  args: ReadFileArgs,
  execute: readFileLines,
};

async function readFileLines(args: ReadFileArgs, ctx: ToolContext): Promise<ToolOutcome> {
  const target = await resolveToolPath(await worktreeRoot(ctx.worktree), ctx.worktree, args.path);
  const stats = await stat(target.path).catch(() => undefined);
  if (stats === undefined) return toolError(`'${target.display}' does not exist; list_files shows the files`);
  if (stats.isDirectory()) return toolError(`'${target.display}' is a directory; use list_files with the glob '${target.display}' to see its files`);
  if (!stats.isFile()) return toolError(`'${target.display}' is not a regular file`);
  if (stats.size > MAX_FILE_BYTES) return toolError(`'${target.display}' is ${stats.size} bytes, too large to read; use search, or shell with head/sed`);
  const text = decodeText(await readFile(target.path));
  if (text === undefined) return toolError(`'${target.display}' is a binary file (${stats.size} bytes); read_file shows text only`);
  if (text === '') return { isError: false, output: `${target.display}: empty file` };

  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const start = args.startLine ?? 1;
  if (start > lines.length) return toolError(`startLine ${start} is past the end of '${target.display}', which has ${lines.length} lines`);
  if (args.endLine !== null && args.endLine < start) return toolError(`endLine ${args.endLine} is before startLine ${start}`);
  const end = Math.min(args.endLine ?? Infinity, start + PAGE_LINES - 1, lines.length);

  const width = String(end).length;
  const shown = lines.slice(start - 1, end).map((line, i) => `${String(start + i).padStart(width)}\t${cutLine(line.replace(/\r$/, ''))}`);
  const header = `${target.display}: lines ${start}-${end} of ${lines.length}`;
  const wanted = Math.min(args.endLine ?? lines.length, lines.length);
  const footer = end < wanted ? [`… lines ${end + 1}-${wanted} not shown: call read_file with startLine ${end + 1} to read on`] : [];
  return { isError: false, output: [header, ...shown, ...footer].join('\n') };
}

/** UTF-8 text, or undefined for a file with NUL bytes or bytes that are not UTF-8. */
function decodeText(bytes: Buffer): string | undefined {
  if (bytes.subarray(0, 8_000).includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function cutLine(line: string): string {
  return line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}… [${line.length - MAX_LINE_CHARS} more characters]` : line;
}
