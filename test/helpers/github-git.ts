/**
 * A test's own working copy of a repository in the fake GitHub (credentials in the URL: this is
 * the test acting as a person with a token, never what an agent does), to put commits on
 * branches the way a person or CI would.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { git } from '../../core/git/git.js';
import type { FakeGitHub } from '../fakes/github/server.js';

export interface WorkingCopy {
  dir: string;
  git(args: string[]): Promise<string>;
  /** Writes the files, commits them and returns the new commit. */
  commit(files: Record<string, string>, message: string): Promise<string>;
  push(branch: string, options?: { force?: boolean }): Promise<void>;
  cleanup(): Promise<void>;
}

export async function cloneFromFake(fake: FakeGitHub, input: { owner: string; repo: string; token: string }): Promise<WorkingCopy> {
  const parent = await mkdtemp(join(tmpdir(), 'sg-wc-'));
  const dir = join(parent, 'repo');
  const url = new URL(`${fake.gitUrl}/${input.owner}/${input.repo}.git`);
  url.username = 'x-access-token';
  url.password = input.token;
  await git(['clone', '--quiet', url.toString(), dir], { cwd: parent });
  const run = (args: string[]) => git(args, { cwd: dir });
  return {
    dir,
    git: run,
    async commit(files, message) {
      for (const [path, content] of Object.entries(files)) {
        await mkdir(dirname(join(dir, path)), { recursive: true });
        await writeFile(join(dir, path), content);
      }
      await run(['add', '--all']);
      await run(['commit', '--quiet', '-m', message]);
      return (await run(['rev-parse', 'HEAD'])).trim();
    },
    async push(branch, options = {}) {
      await run(['push', '--quiet', ...(options.force === true ? ['--force'] : []), 'origin', `HEAD:refs/heads/${branch}`]);
    },
    cleanup: () => rm(parent, { recursive: true, force: true }),
  };
}
