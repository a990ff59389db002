/**
 * Where a path a model gave a file tool lands: inside the worktree or refused (PATH_ESCAPE).
 * The checks are the patch engine's (`..`, absolute paths, symbolic links leading out); an
 * absolute path that names a place inside the worktree is taken as the relative path it means.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { StagegateError } from '../../../../core/errors.js';
import { isInside } from '../../../../core/fs/is-inside.js';
import { resolveInside, type ResolvedPath } from '../../patch/resolve-inside.js';

/** The worktree as a physical path, which `resolveInside` needs as its root. */
export function worktreeRoot(worktree: string): Promise<string> {
  return realpath(worktree);
}

export async function resolveToolPath(root: string, worktree: string, input: string): Promise<ResolvedPath> {
  if (path.isAbsolute(input)) {
    const base = [root, path.resolve(worktree)].find((dir) => isInside(dir, input));
    if (base === undefined) {
      throw new StagegateError('PATH_ESCAPE', `refused path '${input}': it is an absolute path outside the worktree; give paths relative to the worktree root`, {
        details: { path: input },
      });
    }
    return resolveInside(root, path.relative(base, input) || '.');
  }
  return resolveInside(root, input);
}

/** The repository's own `.git`: git runs what is written there (hooks, config), so tools never write it. */
export function isInGitDir(root: string, physicalPath: string): boolean {
  return isInside(path.join(root, '.git'), physicalPath);
}
