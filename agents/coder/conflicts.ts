/**
 * Merge conflicts as git leaves them in a file (`<<<<<<< ours`, `|||||||` base with diff3,
 * `=======`, `>>>>>>> theirs`), read back as hunks: what the model is shown to resolve, and what
 * a failed update names. Pure: text in, hunks out.
 */

export interface ConflictHunk {
  /** 1-based line of the `<<<<<<<` marker. */
  startLine: number;
  /** 1-based line of the `>>>>>>>` marker (the last line of the file when it is missing). */
  endLine: number;
  ours: string[];
  theirs: string[];
}

export interface ConflictedFile {
  path: string;
  hunks: ConflictHunk[];
}

const OPEN = /^<{7}(?: |$)/;
const BASE = /^\|{7}(?: |$)/;
const SPLIT = /^={7}$/;
const CLOSE = /^>{7}(?: |$)/;

/** The conflict hunks of a file's text, in order; none when it holds no markers. */
export function parseConflictHunks(text: string): ConflictHunk[] {
  const lines = text.split('\n');
  const hunks: ConflictHunk[] = [];
  let open: { startLine: number; ours: string[]; theirs: string[]; side: 'ours' | 'base' | 'theirs' } | undefined;
  lines.forEach((line, i) => {
    if (open === undefined) {
      if (OPEN.test(line)) open = { startLine: i + 1, ours: [], theirs: [], side: 'ours' };
      return;
    }
    if (CLOSE.test(line)) {
      hunks.push({ startLine: open.startLine, endLine: i + 1, ours: open.ours, theirs: open.theirs });
      open = undefined;
    } else if (open.side === 'ours' && BASE.test(line)) open.side = 'base';
    else if (open.side !== 'theirs' && SPLIT.test(line)) open.side = 'theirs';
    else if (open.side === 'ours') open.ours.push(line);
    else if (open.side === 'theirs') open.theirs.push(line);
  });
  if (open !== undefined) hunks.push({ startLine: open.startLine, endLine: lines.length, ours: open.ours, theirs: open.theirs });
  return hunks;
}

/** Lines that still look like conflict markers (1-based), so a "resolved" file that is not is caught. */
export function markerLines(text: string): number[] {
  return text.split('\n').flatMap((line, i) => (OPEN.test(line) || CLOSE.test(line) || SPLIT.test(line) ? [i + 1] : []));
}

/** `src/a.ts (lines 3-9, 20-24); README.md (lines 1-5)`: where the conflicts are, in a line. */
export function describeConflictPlaces(files: readonly ConflictedFile[]): string {
  const range = (h: ConflictHunk) => (h.startLine === h.endLine ? `${h.startLine}` : `${h.startLine}-${h.endLine}`);
  const word = (hunks: ConflictHunk[]) => (hunks.length === 1 && hunks[0]?.startLine === hunks[0]?.endLine ? 'line' : 'lines');
  return files.map((f) => (f.hunks.length === 0 ? f.path : `${f.path} (${word(f.hunks)} ${f.hunks.map(range).join(', ')})`)).join('; ');
}

/** Each hunk, both sides, for the model and for a person reading why an update failed; long sides are cut. */
export function renderConflictHunks(files: readonly ConflictedFile[], maxLinesPerSide = 40): string {
  const side = (lines: string[]) => (lines.length <= maxLinesPerSide ? lines : [...lines.slice(0, maxLinesPerSide), `… (${lines.length - maxLinesPerSide} more lines)`]).join('\n');
  return files
    .map((f) => {
      const hunks = f.hunks.map((h) => `### ${f.path} lines ${h.startLine}-${h.endLine}\nOn the branch:\n\`\`\`\n${side(h.ours)}\n\`\`\`\nOn the base:\n\`\`\`\n${side(h.theirs)}\n\`\`\``);
      return hunks.length === 0 ? `### ${f.path}\n(conflicted without text markers: a file deleted on one side, or binary)` : hunks.join('\n\n');
    })
    .join('\n\n');
}
