/**
 * Finds where a chunk's old lines sit in a file, as Codex's `seek_sequence` does: each pass is
 * more forgiving than the one before, and the first pass that finds a match anywhere wins. Models
 * often drop trailing spaces, re-indent, or type ASCII where the file has typographic punctuation;
 * these passes let such patches land without letting a wholly different line match.
 */

type LineMatch = (fileLine: string, patchLine: string) => boolean;

const PASSES: readonly LineMatch[] = [
  (fileLine, patchLine) => fileLine === patchLine,
  (fileLine, patchLine) => fileLine.trimEnd() === patchLine.trimEnd(),
  (fileLine, patchLine) => fileLine.trim() === patchLine.trim(),
  (fileLine, patchLine) => normaliseLookAlikes(fileLine) === normaliseLookAlikes(patchLine),
];

/**
 * Index in `lines` where `pattern` starts, searching from `start`; undefined when it is nowhere.
 * With `atEndOfFile` the pattern must be the file's last lines (Codex does not fall back to an
 * earlier position). An empty pattern matches at `start`.
 */
export function seekSequence(
  lines: readonly string[],
  pattern: readonly string[],
  start: number,
  atEndOfFile: boolean,
): number | undefined {
  if (pattern.length === 0) return start;
  const lastStart = lines.length - pattern.length;
  if (lastStart < 0) return undefined;
  const firstStart = atEndOfFile ? lastStart : start;
  for (const matches of PASSES) {
    for (let at = firstStart; at <= lastStart; at += 1) {
      if (pattern.every((patchLine, offset) => matches(lines[at + offset] ?? '', patchLine))) return at;
    }
  }
  return undefined;
}

/** Trimmed, with the Unicode dashes, quotes and spaces Codex folds mapped to their ASCII forms. */
function normaliseLookAlikes(line: string): string {
  return line
    .trim()
    .replace(/[\u2010-\u2015\u2212]/g, '-')
    .replace(/[\u2018-\u201B]/g, "'")
    .replace(/[\u201C-\u201F]/g, '"')
    .replace(/[\u00A0\u2002-\u200A\u202F\u205F\u3000]/g, ' ');
}
