/**
 * The size of a change, from `git diff --numstat -z --no-renames <range>`: the paths it
 * touches and its added plus deleted lines. Without rename detection a move lists both paths,
 * which is what a path rule must see. Binary files count as changed paths with 0 lines.
 */
export interface ChangeSize {
  changedFiles: string[];
  linesChanged: number;
}

export const NUMSTAT_ARGS = ['diff', '--numstat', '-z', '--no-renames'] as const;

export function parseNumstat(output: string): ChangeSize {
  const changedFiles: string[] = [];
  let linesChanged = 0;
  for (const record of output.split('\0')) {
    const [, added, deleted, path] = /^\s*(\d+|-)\t(\d+|-)\t(.+)$/s.exec(record) ?? [];
    if (path === undefined) continue;
    changedFiles.push(path);
    linesChanged += (added === '-' ? 0 : Number(added)) + (deleted === '-' ? 0 : Number(deleted));
  }
  return { changedFiles, linesChanged };
}
