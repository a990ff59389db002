/**
 * Pure: the text of a file after an Update File operation's chunks, or PATCH_REJECTED naming the
 * chunk that does not fit. Chunks are located in order (each search starts where the previous
 * chunk ended, or after its `@@` anchor line) and then replaced all at once.
 *
 * Line endings, as Codex does: matching ignores them; lines the patch does not touch keep theirs;
 * new lines take the file's first line ending (LF when it has none); every line ends with one, so
 * the result always ends with a newline.
 */
import { StagegateError } from '../../../core/errors.js';
import type { UpdateChunk } from './parse-patch.js';
import { seekSequence } from './seek-sequence.js';

interface SourceLine {
  text: string;
  ending: string;
}

interface Replacement {
  start: number;
  oldCount: number;
  newLines: readonly string[];
  chunk: number;
}

export function applyChunks(original: string, chunks: readonly UpdateChunk[], path: string): string {
  const source = splitLines(original);
  const texts = source.map((line) => line.text);
  const replacements = locateChunks(texts, chunks, path);
  const ending = source.find((line) => line.ending !== '')?.ending ?? '\n';
  const result: SourceLine[] = [];
  let next = 0;
  for (const { start, oldCount, newLines } of replacements) {
    result.push(...source.slice(next, start));
    result.push(...newLines.map((text) => ({ text, ending })));
    next = start + oldCount;
  }
  result.push(...source.slice(next));
  return result.map((line) => line.text + (line.ending === '' ? ending : line.ending)).join('');
}

function locateChunks(texts: readonly string[], chunks: readonly UpdateChunk[], path: string): Replacement[] {
  const replacements: Replacement[] = [];
  let searchFrom = 0;
  chunks.forEach((chunk, index) => {
    const reject = (why: string, details: Record<string, unknown>): StagegateError =>
      new StagegateError(
        'PATCH_REJECTED',
        `cannot apply chunk ${index + 1} of ${chunks.length} to '${path}': ${why}`,
        { details: { path, chunk: index + 1, ...details } },
      );
    if (chunk.context !== undefined) {
      const at = seekSequence(texts, [chunk.context], searchFrom, false);
      if (at === undefined) {
        const why = `the '@@ ${chunk.context}' anchor line was not found${after(searchFrom)}`;
        throw reject(why, { anchor: chunk.context });
      }
      searchFrom = at + 1;
    }
    if (chunk.oldLines.length === 0) {
      // A chunk that only adds lines goes at the end of the file, anchor or not, as in Codex.
      replacements.push({ start: texts.length, oldCount: 0, newLines: chunk.newLines, chunk: index + 1 });
      return;
    }
    let oldLines = chunk.oldLines;
    let newLines = chunk.newLines;
    let at = seekSequence(texts, oldLines, searchFrom, chunk.isEndOfFile);
    if (at === undefined && oldLines.at(-1) === '') {
      // A trailing empty line often stands for the file's final newline, which is no line of its own.
      oldLines = oldLines.slice(0, -1);
      if (newLines.at(-1) === '') newLines = newLines.slice(0, -1);
      at = seekSequence(texts, oldLines, searchFrom, chunk.isEndOfFile);
    }
    if (at === undefined) {
      const where = chunk.isEndOfFile ? ' at the end of the file' : after(searchFrom);
      const shown = chunk.oldLines.map((line) => `\n  | ${line}`).join('');
      throw reject(`these lines were not found${where}:${shown}`, { expectedLines: chunk.oldLines });
    }
    replacements.push({ start: at, oldCount: oldLines.length, newLines, chunk: index + 1 });
    searchFrom = at + oldLines.length;
  });
  return inOrderWithoutOverlap(replacements, path);
}

/** An end-of-file chunk may land before the previous chunk; two chunks must never claim one line. */
function inOrderWithoutOverlap(replacements: Replacement[], path: string): Replacement[] {
  const sorted = replacements.toSorted((a, b) => a.start - b.start);
  sorted.forEach((current, index) => {
    const previous = sorted[index - 1];
    if (previous !== undefined && current.start < previous.start + previous.oldCount) {
      const [first, second] = [previous.chunk, current.chunk].sort((a, b) => a - b);
      throw new StagegateError(
        'PATCH_REJECTED',
        `cannot apply chunks ${first} and ${second} to '${path}': ` +
          `they change the same lines (from line ${current.start + 1})`,
        { details: { path, chunks: [first, second] } },
      );
    }
  });
  return sorted;
}

function after(searchFrom: number): string {
  return searchFrom === 0 ? '' : ` after line ${searchFrom}`;
}

/** Lines with their own endings ('\n', '\r\n', or '' for a last line without one). */
function splitLines(text: string): SourceLine[] {
  const lines: SourceLine[] = [];
  let start = 0;
  for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
    const crlf = newline > start && text[newline - 1] === '\r';
    lines.push({ text: text.slice(start, crlf ? newline - 1 : newline), ending: crlf ? '\r\n' : '\n' });
    start = newline + 1;
  }
  if (start < text.length) lines.push({ text: text.slice(start), ending: '' });
  return lines;
}
