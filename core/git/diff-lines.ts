/**
 * The lines a change adds and removes, per file, from `git diff --unified=0` (DIFF_LINES_ARGS):
 * what checks that read the content of a change (a permission granted, a secret added) look at.
 * Paths git quotes (C-style, for tabs, quotes, newlines and other bytes) are unquoted.
 */
export const DIFF_LINES_ARGS = ['-c', 'core.quotePath=false', 'diff', '--unified=0', '--no-color', '--no-ext-diff', '--no-renames'] as const;

export interface DiffLine {
  /** In the new version for added lines, in the old one for removed lines. */
  line: number;
  text: string;
}

export interface FileDiff {
  path: string;
  status: 'added' | 'deleted' | 'modified';
  added: DiffLine[];
  removed: DiffLine[];
}

export function parseDiffLines(output: string): FileDiff[] {
  const files: FileDiff[] = [];
  let file: FileDiff | undefined;
  let oldPath: string | null = null;
  let inHunk = false;
  let nextOld = 0;
  let nextNew = 0;
  for (const line of output.split('\n')) {
    if (line.startsWith('diff --git ')) {
      file = undefined;
      oldPath = null;
      inHunk = false;
      continue;
    }
    if (!inHunk && line.startsWith('--- ')) {
      oldPath = pathOf(line.slice(4), 'a/');
      continue;
    }
    if (!inHunk && line.startsWith('+++ ')) {
      const newPath = pathOf(line.slice(4), 'b/');
      const path = newPath ?? oldPath;
      if (path === null) continue;
      file = { path, status: oldPath === null ? 'added' : newPath === null ? 'deleted' : 'modified', added: [], removed: [] };
      files.push(file);
      continue;
    }
    const hunk = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (hunk !== null) {
      inHunk = true;
      nextOld = Number(hunk[1]);
      nextNew = Number(hunk[2]);
      continue;
    }
    if (file === undefined || !inHunk) continue;
    if (line.startsWith('+')) file.added.push({ line: nextNew++, text: line.slice(1) });
    else if (line.startsWith('-')) file.removed.push({ line: nextOld++, text: line.slice(1) });
  }
  return files;
}

/** `a/src/x.ts`, `"b/we\tird"` or `/dev/null` (null). */
function pathOf(text: string, prefix: string): string | null {
  const raw = text.replace(/\t$/, '');
  if (raw === '/dev/null') return null;
  const path = raw.startsWith('"') ? unquote(raw) : raw;
  return path.startsWith(prefix) ? path.slice(prefix.length) : path;
}

const ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };

/** Git's C-style quoting: escapes and octal bytes, read back as UTF-8. */
function unquote(quoted: string): string {
  const bytes: number[] = [];
  const chars = [...quoted.slice(1, -1)];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch !== '\\') {
      bytes.push(...Buffer.from(ch, 'utf8'));
      continue;
    }
    const octal = chars.slice(i + 1, i + 4).join('');
    if (/^[0-7]{3}$/.test(octal)) {
      bytes.push(parseInt(octal, 8));
      i += 3;
      continue;
    }
    const next = chars[i + 1] ?? '';
    bytes.push(...(ESCAPES[next] === undefined ? Buffer.from(next, 'utf8') : [ESCAPES[next]]));
    i += 1;
  }
  return Buffer.from(bytes).toString('utf8');
}
