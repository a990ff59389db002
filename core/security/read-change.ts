/** The change as the security checks read it, from git: against the merge base, as `git diff base...commit` shows it. */
import { DIFF_LINES_ARGS, parseDiffLines } from '../git/diff-lines.js';
import type { ChangeUnderReview } from './change-checks.js';

/** `git` runs in the clone; `base` is the ref the change is measured from (`origin/main`). */
export async function readChange(
  git: (args: string[]) => Promise<string>,
  range: { base: string; commit: string },
  changedFiles: readonly string[],
): Promise<ChangeUnderReview> {
  const mergeBase = (await git(['merge-base', range.base, range.commit])).trim();
  const diff = parseDiffLines(await git([...DIFF_LINES_ARGS, mergeBase, range.commit]));
  const absent = {
    base: new Set(diff.filter((f) => f.status === 'added').map((f) => f.path)),
    head: new Set(diff.filter((f) => f.status === 'deleted').map((f) => f.path)),
  };
  return {
    changedFiles,
    diff,
    read: async (side, path) => (absent[side].has(path) ? undefined : git(['show', `${side === 'base' ? mergeBase : range.commit}:${path}`])),
  };
}
