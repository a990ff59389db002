/**
 * The git side of the fake: each repository is a real bare repository under the fake's root
 * (`<root>/<owner>/<repo>.git`), so pull requests read their head from it and merges write real
 * commits to it (merge commit, squash or rebase, built with `merge-tree` and `commit-tree`, no
 * work tree). Every git command runs with a clean environment and a fixed committer.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const FAKE_COMMITTER = { name: 'GitHub', email: 'noreply@github.com' };

export function gitEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmpdir(),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: FAKE_COMMITTER.name,
    GIT_AUTHOR_EMAIL: FAKE_COMMITTER.email,
    GIT_COMMITTER_NAME: FAKE_COMMITTER.name,
    GIT_COMMITTER_EMAIL: FAKE_COMMITTER.email,
    ...extra,
  };
}

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs git in `cwd`; resolves with the exit code instead of throwing. */
export function runGit(cwd: string, args: string[], env: Record<string, string> = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd, env: gitEnv(env), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(err);
        return;
      }
      resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr });
    });
  });
}

export async function git(cwd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await runGit(cwd, args, env);
  if (result.code !== 0) throw new Error(`git ${args.join(' ')} in ${cwd} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** A bare repository with one commit on `defaultBranch` holding `files` (path → content). */
export async function createBareRepo(dir: string, defaultBranch: string, files: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  await git(dir, ['init', '--bare', '--quiet', `--initial-branch=${defaultBranch}`]);
  await git(dir, ['config', 'http.receivepack', 'true']);
  // As GitHub: partial clones (`--filter=blob:none`) get what they ask for.
  await git(dir, ['config', 'uploadpack.allowFilter', 'true']);
  const work = await mkdtemp(join(tmpdir(), 'fake-github-seed-'));
  try {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(work, path)), { recursive: true });
      await writeFile(join(work, path), content);
    }
    const env = { GIT_DIR: dir, GIT_WORK_TREE: work, GIT_INDEX_FILE: join(work, '.git-index') };
    await git(work, ['add', '--all', '--', ...Object.keys(files)], env);
    await git(work, ['commit', '--quiet', '--allow-empty', '-m', 'Initial commit'], env);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The commit a branch, tag or sha names; undefined when it names none. */
export async function resolveCommit(dir: string, ref: string): Promise<string | undefined> {
  const name = ref.startsWith('heads/') || ref.startsWith('tags/') ? `refs/${ref}` : ref;
  const result = await runGit(dir, ['rev-parse', '--verify', '--quiet', `${name}^{commit}`]);
  return result.code === 0 ? result.stdout.trim() : undefined;
}

export async function branchSha(dir: string, branch: string): Promise<string | undefined> {
  const result = await runGit(dir, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]);
  return result.code === 0 ? result.stdout.trim() : undefined;
}

export async function isAncestor(dir: string, ancestor: string, descendant: string): Promise<boolean> {
  return (await runGit(dir, ['merge-base', '--is-ancestor', ancestor, descendant])).code === 0;
}

/** The tree of merging `theirs` into `ours`, or undefined when they conflict. */
export async function mergeTree(dir: string, ours: string, theirs: string, mergeBase?: string): Promise<string | undefined> {
  const args = ['merge-tree', '--write-tree', '--no-messages'];
  if (mergeBase !== undefined) args.push(`--merge-base=${mergeBase}`);
  const result = await runGit(dir, [...args, ours, theirs]);
  if (result.code === 1) return undefined;
  if (result.code !== 0) throw new Error(`git merge-tree in ${dir} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout.trim().split('\n')[0];
}

export async function commitTree(dir: string, tree: string, parents: string[], message: string, author?: { name: string; email: string; date: string }): Promise<string> {
  const env: Record<string, string> =
    author === undefined ? {} : { GIT_AUTHOR_NAME: author.name, GIT_AUTHOR_EMAIL: author.email, GIT_AUTHOR_DATE: author.date };
  return git(dir, ['commit-tree', tree, ...parents.flatMap((p) => ['-p', p]), '-m', message], env);
}

/** Moves a branch from `expected` to `sha` (compare-and-set, as a push would). */
export async function updateBranch(dir: string, branch: string, sha: string, expected: string): Promise<void> {
  await git(dir, ['update-ref', `refs/heads/${branch}`, sha, expected]);
}

/** Deletes a branch; false when there is no such branch. */
export async function deleteBranch(dir: string, branch: string): Promise<boolean> {
  const sha = await branchSha(dir, branch);
  if (sha === undefined) return false;
  return (await runGit(dir, ['update-ref', '-d', `refs/heads/${branch}`, sha])).code === 0;
}

export interface ChangedFile {
  filename: string;
  status: 'added' | 'removed' | 'modified' | 'renamed';
  additions: number;
  deletions: number;
}

/** Files changed on `head` since it left `base` (GitHub's three-dot diff of a pull request). */
export async function changedFiles(dir: string, base: string, head: string): Promise<ChangedFile[]> {
  const numstat = await git(dir, ['diff', '--numstat', '--no-renames', `${base}...${head}`]);
  const names = await git(dir, ['diff', '--name-status', '--no-renames', `${base}...${head}`]);
  const statusOf = new Map(
    names
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [code = 'M', path = ''] = line.split('\t');
        return [path, code === 'A' ? 'added' : code === 'D' ? 'removed' : 'modified'] as const;
      }),
  );
  return numstat
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [added = '0', deleted = '0', filename = ''] = line.split('\t');
      return { filename, status: statusOf.get(filename) ?? 'modified', additions: Number(added) || 0, deletions: Number(deleted) || 0 };
    });
}

/** Lines of `path` a review comment may point at: the diff's hunks, new side (RIGHT) and old side (LEFT). */
export async function diffLines(dir: string, base: string, head: string, path: string): Promise<{ RIGHT: Set<number>; LEFT: Set<number> }> {
  const diff = await git(dir, ['diff', '--no-renames', '-U3', `${base}...${head}`, '--', path]);
  const lines = { RIGHT: new Set<number>(), LEFT: new Set<number>() };
  for (const match of diff.matchAll(/^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/gm)) {
    const [oldStart, oldCount, newStart, newCount] = [match[1], match[2] ?? '1', match[3], match[4] ?? '1'].map(Number) as [number, number, number, number];
    for (let n = 0; n < oldCount; n++) lines.LEFT.add(oldStart + n);
    for (let n = 0; n < newCount; n++) lines.RIGHT.add(newStart + n);
  }
  return lines;
}

export async function commitCount(dir: string, base: string, head: string): Promise<number> {
  return Number(await git(dir, ['rev-list', '--count', `${base}..${head}`]));
}

export interface CommitInfo {
  sha: string;
  message: string;
  author: { name: string; email: string; date: string };
  parents: string[];
}

export async function commitInfo(dir: string, sha: string): Promise<CommitInfo> {
  const out = await git(dir, ['log', '-1', '--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%B', sha]);
  const [hash = sha, parents = '', name = '', email = '', date = '', ...message] = out.split('\0');
  return { sha: hash, parents: parents.split(' ').filter(Boolean), author: { name, email, date }, message: message.join('\0').trim() };
}

/** Commits on `head` not on `base`, oldest first, merges left out (what a rebase merge replays). */
export async function commitsBetween(dir: string, base: string, head: string): Promise<string[]> {
  const out = await git(dir, ['rev-list', '--reverse', '--no-merges', `${base}..${head}`]);
  return out.split('\n').filter(Boolean);
}
