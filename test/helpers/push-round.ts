/** What a stand-in coder does in GitHub tests: writes files on the task's branch, commits and pushes through the gateway like the real coder. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImplementRequest } from '../../core/bus/messages.js';
import { cloneForJob, remoteBranchExists } from '../../core/git/workspace.js';

/** The commit pushed: the branch as it is on the remote (or the base, on the first round), plus `files`. */
export async function pushRound(job: ImplementRequest, workDir: string, files: Record<string, string>): Promise<string> {
  const ws = await cloneForJob({ repo: job.task.repo, workDir, taskId: job.taskId, name: `implement-${job.attempt}` });
  const resumes = await remoteBranchExists(ws, job.branch);
  await ws.git(['checkout', '--quiet', '-B', job.branch, `origin/${resumes ? job.branch : job.task.base}`]);
  for (const [path, text] of Object.entries(files)) await writeFile(join(ws.dir, path), text);
  await ws.git(['add', '--all']);
  await ws.git(['commit', '--quiet', '-m', `Round ${job.round}`]);
  await ws.git(['push', '--quiet', 'origin', `HEAD:refs/heads/${job.branch}`]);
  const commit = (await ws.git(['rev-parse', 'HEAD'])).trim();
  await ws.remove();
  return commit;
}
