/**
 * A fresh clone of the task's repository for one job, so workers on any machine work alike
 * and never share a working tree. A failed job's clone stays for inspection; the next attempt
 * gets a directory of its own.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { git } from './git.js';

export interface Workspace {
  dir: string;
  git(args: string[]): Promise<string>;
  remove(): Promise<void>;
}

export async function cloneForJob(input: {
  repo: string;
  workDir: string;
  taskId: string;
  name: string;
}): Promise<Workspace> {
  const parent = join(input.workDir, input.taskId);
  const dir = join(parent, input.name);
  await mkdir(parent, { recursive: true });
  await rm(dir, { recursive: true, force: true });
  await git(['clone', '--quiet', input.repo, dir], { cwd: parent, taskId: input.taskId });
  return {
    dir,
    git: (args) => git(args, { cwd: dir, taskId: input.taskId }),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

export async function remoteBranchExists(ws: Workspace, branch: string): Promise<boolean> {
  const out = await ws.git(['ls-remote', '--heads', 'origin', `refs/heads/${branch}`]);
  return out.trim().length > 0;
}
