/**
 * Parses the OpenAI Codex `apply_patch` format into typed operations. Pure: it never looks at the
 * file system, so a patch that parses may still be rejected when applied.
 *
 *   *** Begin Patch
 *   *** Add File: PATH        then lines `+text` (the file's contents)
 *   *** Delete File: PATH
 *   *** Update File: PATH     then optional `*** Move to: PATH`, then chunks:
 *     `@@` or `@@ anchor`     (optional on the first chunk) then lines ` ctx` / `-old` / `+new`,
 *                             optionally closed by `*** End of File`
 *   *** End Patch
 *
 * Acceptance follows Codex's parser, leniencies included, because models are trained on what it
 * accepts: the text is trimmed; the begin/end markers and operation headers may be padded with
 * whitespace; `@@`, `*** End of File` and `*** Move to:` may carry trailing whitespace; blank lines
 * between chunks are skipped; an empty line inside a chunk is an empty context line; a patch
 * wrapped in a `<<'EOF'` … `EOF` heredoc is unwrapped. Unlike Codex, a patch with no operations
 * is a parse error here rather than a failure to apply.
 */
import { StagegateError } from '../../../core/errors.js';

export interface UpdateChunk {
  /** The `@@ text` anchor: the chunk's old lines are searched for after this line. */
  context: string | undefined;
  /** Context and `-` lines, in order: what the file must contain. */
  oldLines: string[];
  /** Context and `+` lines, in order: what replaces `oldLines`. */
  newLines: string[];
  /** Closed by `*** End of File`: `oldLines` must be the file's last lines. */
  isEndOfFile: boolean;
}

export type PatchOperation =
  | { type: 'add'; path: string; contents: string }
  | { type: 'delete'; path: string }
  | { type: 'update'; path: string; moveTo: string | undefined; chunks: UpdateChunk[] };

const BEGIN_PATCH = '*** Begin Patch';
const END_PATCH = '*** End Patch';
const ADD_FILE = '*** Add File: ';
const DELETE_FILE = '*** Delete File: ';
const UPDATE_FILE = '*** Update File: ';
const MOVE_TO = '*** Move to: ';
const END_OF_FILE = '*** End of File';
const ANCHOR = '@@';
const HEREDOC_OPENERS = new Set(["<<EOF", "<<'EOF'", '<<"EOF"']);
const HEADERS = `'${ADD_FILE}PATH', '${DELETE_FILE}PATH' or '${UPDATE_FILE}PATH'`;

/** The patch body between the markers, with the 1-based number of each line in the original text. */
interface Body {
  lines: readonly string[];
  /** Index in `lines` of `*** End Patch`; operations live in lines 1 .. end-1. */
  end: number;
  lineNumber: (index: number) => number;
}

export function parsePatch(text: string): PatchOperation[] {
  const body = findBody(text);
  const operations: PatchOperation[] = [];
  let index = 1;
  while (index < body.end) {
    const parsed = parseOperation(body, index);
    operations.push(parsed.operation);
    index = parsed.next;
  }
  if (operations.length === 0) {
    throw invalid(body.lineNumber(body.end), `expected at least one ${HEADERS} before '${END_PATCH}'`);
  }
  return operations;
}

function findBody(text: string): Body {
  const trimmed = text.trim();
  if (trimmed === '') throw invalid(1, `expected '${BEGIN_PATCH}', got an empty patch`);
  const leading = text.slice(0, text.length - text.trimStart().length);
  const firstLineNumber = 1 + countNewlines(leading);
  // Like Rust's `str::lines`, which Codex uses: a CRLF patch parses like an LF one.
  const lines = trimmed.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  const first = lines[0] ?? '';
  const last = lines.at(-1) ?? '';
  const isHeredoc = HEREDOC_OPENERS.has(first) && last.endsWith('EOF') && lines.length >= 4;
  const markers = isHeredoc && !hasMarkers(lines) ? lines.slice(1, -1) : lines;
  const offset = markers === lines ? firstLineNumber : firstLineNumber + 1;
  const lineNumber = (index: number): number => offset + index;
  checkMarkers(markers, lineNumber);
  return { lines: markers, end: markers.length - 1, lineNumber };
}

function hasMarkers(lines: readonly string[]): boolean {
  return lines.length >= 2 && lines[0]?.trim() === BEGIN_PATCH && lines.at(-1)?.trim() === END_PATCH;
}

function checkMarkers(lines: readonly string[], lineNumber: (index: number) => number): void {
  const first = lines[0]?.trim() ?? '';
  if (first !== BEGIN_PATCH) throw invalid(lineNumber(0), `expected '${BEGIN_PATCH}', got '${first}'`);
  const last = lines.length >= 2 ? (lines.at(-1)?.trim() ?? '') : '';
  if (last !== END_PATCH) {
    const where = lineNumber(Math.max(lines.length - 1, 1));
    const got = last === '' ? 'the end of the patch' : `'${last}'`;
    throw invalid(where, `expected '${END_PATCH}' as the last line, got ${got}`);
  }
}

function parseOperation(body: Body, index: number): { operation: PatchOperation; next: number } {
  const header = (body.lines[index] ?? '').trim();
  if (header.startsWith(ADD_FILE)) return parseAdd(body, index, header.slice(ADD_FILE.length));
  if (header.startsWith(DELETE_FILE)) {
    return { operation: { type: 'delete', path: header.slice(DELETE_FILE.length) }, next: index + 1 };
  }
  if (header.startsWith(UPDATE_FILE)) return parseUpdate(body, index, header.slice(UPDATE_FILE.length));
  throw invalid(body.lineNumber(index), `expected ${HEADERS}, got '${header}'`);
}

function parseAdd(body: Body, headerIndex: number, path: string): { operation: PatchOperation; next: number } {
  let contents = '';
  let index = headerIndex + 1;
  while (index < body.end) {
    const line = body.lines[index] ?? '';
    if (!line.startsWith('+')) break;
    contents += `${line.slice(1)}\n`;
    index += 1;
  }
  return { operation: { type: 'add', path, contents }, next: index };
}

function parseUpdate(body: Body, headerIndex: number, path: string): { operation: PatchOperation; next: number } {
  let index = headerIndex + 1;
  let moveTo: string | undefined;
  const moveLine = index < body.end ? (body.lines[index] ?? '') : '';
  if (moveLine.startsWith(MOVE_TO)) {
    moveTo = moveLine.slice(MOVE_TO.length).trim();
    if (moveTo === '') throw invalid(body.lineNumber(index), `expected a path after '${MOVE_TO.trim()}'`);
    index += 1;
  }
  const chunks: UpdateChunk[] = [];
  while (index < body.end) {
    const line = body.lines[index] ?? '';
    if (line.trim() === '') {
      index += 1;
      continue;
    }
    if (line.startsWith('***')) break;
    const parsed = parseChunk(body, index, path, chunks.length === 0);
    chunks.push(parsed.chunk);
    index = parsed.next;
  }
  if (chunks.length === 0) {
    throw invalid(
      body.lineNumber(headerIndex),
      `'${UPDATE_FILE}${path}' has no changes: expected '${ANCHOR}' and lines starting with ' ', '-' or '+'`,
    );
  }
  return { operation: { type: 'update', path, moveTo, chunks }, next: index };
}

/** One chunk from `index`; only the first chunk of an update may leave out its `@@` line. */
function parseChunk(body: Body, index: number, path: string, isFirst: boolean): { chunk: UpdateChunk; next: number } {
  const first = body.lines[index] ?? '';
  let context: string | undefined;
  let start = index;
  if (first.trimEnd() === ANCHOR) {
    start += 1;
  } else if (first.startsWith(`${ANCHOR} `)) {
    context = first.slice(ANCHOR.length + 1);
    start += 1;
  } else if (!isFirst) {
    throw invalid(body.lineNumber(index), `expected '${ANCHOR}' to start the next change to '${path}', got '${first}'`);
  }
  const chunk: UpdateChunk = { context, oldLines: [], newLines: [], isEndOfFile: false };
  let next = start;
  for (; next < body.end; next += 1) {
    const line = body.lines[next] ?? '';
    if (line.trimEnd() === END_OF_FILE && next > start) {
      chunk.isEndOfFile = true;
      next += 1;
      break;
    }
    const marker = line.charAt(0);
    const text = line.slice(1);
    if (marker === '') {
      chunk.oldLines.push('');
      chunk.newLines.push('');
    } else if (marker === ' ') {
      chunk.oldLines.push(text);
      chunk.newLines.push(text);
    } else if (marker === '-') {
      chunk.oldLines.push(text);
    } else if (marker === '+') {
      chunk.newLines.push(text);
    } else {
      break;
    }
  }
  if (next === start) {
    const got = start < body.end ? `'${body.lines[start] ?? ''}'` : `'${END_PATCH}'`;
    throw invalid(
      body.lineNumber(start),
      `expected a line starting with ' ', '-' or '+' in the change to '${path}', got ${got}`,
    );
  }
  return { chunk, next };
}

function countNewlines(text: string): number {
  return text.split('\n').length - 1;
}

function invalid(line: number, message: string): StagegateError {
  return new StagegateError('PATCH_INVALID', `invalid patch, line ${line}: ${message}`, { details: { line } });
}
