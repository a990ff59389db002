/**
 * The files a model may look at: tracked, or untracked but not ignored — what
 * `git ls-files --cached --others --exclude-standard` lists, so .gitignore is respected — minus
 * tracked files deleted from the tree, filtered by an optional glob.
 *
 * Glob syntax is picomatch's (`*`, `**`, `?`, `[abc]`, `{a,b}`), dot files included. A glob
 * without a slash matches a file's name in any directory (`*.ts`); a glob also matches every
 * file under a directory it matches (`src` lists all of src/).
 */
import picomatch from 'picomatch';
import { StagegateError } from '../../../../core/errors.js';
import { git } from '../../../../core/git/git.js';

/** Git runs outside the sandbox, so a repository setting never makes it run a program. */
const SAFE_GIT = ['-c', 'core.fsmonitor=false'];

export async function listWorktreeFiles(root: string, glob: string | null): Promise<string[]> {
  const matches = glob === null ? () => true : globMatcher(glob);
  const listed = await git([...SAFE_GIT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root });
  const deleted = new Set(splitZ(await git([...SAFE_GIT, 'ls-files', '-z', '--deleted'], { cwd: root })));
  const files = new Set(splitZ(listed).filter((file) => !deleted.has(file) && matches(file)));
  return [...files].sort();
}

function globMatcher(glob: string): (file: string) => boolean {
  const pattern = glob.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (pattern.startsWith('/') || pattern.split('/').includes('..')) {
    throw new StagegateError('PATH_ESCAPE', `refused glob '${glob}': globs match paths inside the worktree, relative to its root; '..' and absolute paths are not allowed`, {
      details: { glob },
    });
  }
  if (pattern === '' || pattern === '.') return () => true;
  const matchesPath = picomatch([pattern, `${pattern}/**`], { dot: true });
  if (pattern.includes('/')) return matchesPath;
  const matchesName = picomatch(pattern, { dot: true });
  return (file) => matchesPath(file) || matchesName(file.slice(file.lastIndexOf('/') + 1));
}

function splitZ(output: string): string[] {
  return output.split('\0').filter((entry) => entry !== '');
}
