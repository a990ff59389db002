/**
 * The lines a change adds, file by file, read from a unified diff made with `ADDED_LINES_ARGS`:
 * no context lines, no rename detection (a moved file's lines count as added: they are new at
 * that path), every file as text (a `-diff` or `binary` attribute cannot hide a file's content),
 * and fixed `a/` `b/` prefixes whatever the repository's own diff settings say.
 */
export interface AddedLine {
  /** 1-based, in the file's new version. */
  line: number;
  text: string;
}

export interface AddedFile {
  path: string;
  lines: AddedLine[];
}

/** The options of `git diff` / `git diff-tree -p` whose output `parseAddedLines` reads. */
export const ADDED_LINES_ARGS = ['--unified=0', '--no-renames', '--text', '--no-color', '--no-ext-diff', '--no-textconv', '--src-prefix=a/', '--dst-prefix=b/'] as const;

const HUNK = /^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

export function parseAddedLines(diff: string): AddedFile[] {
  const files: AddedFile[] = [];
  let current: AddedFile | undefined;
  // Inside a hunk the counts say how many lines are still its own, so an added line that
  // reads like a header (`+++ x`, `@@ …`) is never taken for one.
  let oldLeft = 0;
  let newLeft = 0;
  let nextLine = 0;
  for (const raw of diff.split('\n')) {
    if (oldLeft > 0 || newLeft > 0) {
      if (raw.startsWith('+')) {
        current?.lines.push({ line: nextLine++, text: raw.slice(1) });
        newLeft--;
      } else if (raw.startsWith('-')) {
        oldLeft--;
      }
      // `\ No newline at end of file` belongs to the line before it and counts for neither side.
      continue;
    }
    if (raw.startsWith('diff --git ')) {
      current = undefined;
    } else if (raw.startsWith('+++ ')) {
      const path = raw.slice(4);
      current = path === '/dev/null' ? undefined : { path: stripPrefix(unquote(path)), lines: [] };
      if (current !== undefined) files.push(current);
    } else {
      const hunk = HUNK.exec(raw);
      if (hunk === null) continue;
      oldLeft = hunk[1] === undefined ? 1 : Number(hunk[1]);
      newLeft = hunk[3] === undefined ? 1 : Number(hunk[3]);
      nextLine = Number(hunk[2]);
    }
  }
  return files.filter((f) => f.lines.length > 0);
}

function stripPrefix(path: string): string {
  return path.startsWith('b/') ? path.slice(2) : path;
}

const ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '"': '"', '\\': '\\' };

/** git quotes a path with unusual characters C-style: `"b/caf\303\251.txt"`. */
function unquote(path: string): string {
  if (!path.startsWith('"') || !path.endsWith('"')) return path;
  const bytes: number[] = [];
  const body = path.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const c = body[i] ?? '';
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const octal = /^[0-7]{3}/.exec(body.slice(i + 1));
    if (octal !== null) {
      bytes.push(Number.parseInt(octal[0], 8));
      i += 3;
    } else {
      const next = body[i + 1] ?? '';
      bytes.push(...Buffer.from(ESCAPES[next] ?? next, 'utf8'));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
