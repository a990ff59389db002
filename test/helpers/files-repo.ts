/**
 * A git repository built from file maps: `main` first, then each other branch as a commit on top
 * of it (a value of null deletes the file, `{ link }` makes a symbolic link), and a clone of it
 * with the working tree on one branch, as an agent's clone would be.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { git } from '../../core/git/git.js';

export type FileMap = Record<string, string | { link: string } | null>;

export async function createFilesRepo(main: FileMap, branches: Record<string, FileMap> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-files-repo-'));
  await git(['init', '--quiet', '--initial-branch=main'], { cwd: dir });
  await git(['config', 'receive.denyCurrentBranch', 'updateInstead'], { cwd: dir });
  await commitFiles(dir, main, 'initial');
  for (const [branch, files] of Object.entries(branches)) {
    await git(['checkout', '--quiet', '-b', branch, 'main'], { cwd: dir });
    await commitFiles(dir, files, `on ${branch}`);
  }
  await git(['checkout', '--quiet', 'main'], { cwd: dir });
  return dir;
}

export async function commitFiles(dir: string, files: FileMap, message: string): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    const file = join(dir, path);
    await rm(file, { force: true });
    if (content === null) continue;
    await mkdir(dirname(file), { recursive: true });
    if (typeof content === 'string') await writeFile(file, content);
    else await symlink(content.link, file);
  }
  await git(['add', '--all'], { cwd: dir });
  await git(['commit', '--quiet', '--allow-empty', '-m', message], { cwd: dir });
  return (await git(['rev-parse', 'HEAD'], { cwd: dir })).trim();
}

/** A clone with `branch` checked out (as the coder's or reviewer's clone is). */
export async function cloneOnBranch(origin: string, branch = 'main'): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'sg-files-clone-')), 'repo');
  await git(['clone', '--quiet', origin, dir], { cwd: tmpdir() });
  await git(['checkout', '--quiet', '-B', branch, `origin/${branch}`], { cwd: dir });
  return dir;
}
