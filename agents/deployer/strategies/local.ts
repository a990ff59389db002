/**
 * The `local` deploy strategy, for tasks that did not come from GitHub: merge the task's branch
 * into the target branch of the repository, run the deploy command if there is one, and push the
 * target branch.
 */
import type { JobContext, JobOutcome } from '../../../core/bus/job-worker.js';
import type { DeployRequest } from '../../../core/bus/messages.js';
import { StagegateError, isStagegateError } from '../../../core/errors.js';
import { withoutStagegateSecrets } from '../../../core/exec/secret-env.js';
import { describeResult, runCommand } from '../../../core/exec/run-command.js';
import { cloneForJob } from '../../../core/git/workspace.js';
import { emptyUsage } from '../../../core/task-record.js';

export interface LocalDeployDeps {
  workDir: string;
  commandTimeoutMs: number;
  deployCommand?: string;
}

export async function deployLocally(deps: LocalDeployDeps, job: DeployRequest, ctx: JobContext): Promise<JobOutcome> {
  const base = job.task.base;
  const ws = await cloneForJob({ repo: job.task.repo, workDir: deps.workDir, taskId: job.taskId, name: `deploy-${job.attempt}` });
  await ws.git(['checkout', '--quiet', '-B', base, `origin/${base}`]);
  await ws.git(['merge', '--no-ff', '--quiet', '-m', `Merge ${job.branch}: ${job.task.title}\n\nStagegate-Task: ${job.taskId}`, job.commit]);
  const merged = (await ws.git(['rev-parse', 'HEAD'])).trim();

  const command = job.task.deployCommand ?? deps.deployCommand;
  if (command !== undefined) {
    await ctx.progress(`running ${command}`);
    const result = await runCommand(command, { cwd: ws.dir, timeoutMs: deps.commandTimeoutMs, env: withoutStagegateSecrets(process.env) });
    if (result.exitCode !== 0 || result.timedOut) {
      throw new StagegateError('COMMAND_FAILED', `deploy command failed, ${base} not updated: ${describeResult(result)}`, { taskId: job.taskId });
    }
  }
  try {
    await ws.git(['push', '--quiet', 'origin', `HEAD:refs/heads/${base}`]);
  } catch (err) {
    if (isStagegateError(err) && /checked out|denyCurrentBranch/i.test(err.message)) {
      throw new StagegateError(
        'GIT_FAILED',
        `cannot push ${base} to ${job.task.repo}: it is checked out there. Use a bare repository, or run \`git -C ${job.task.repo} config receive.denyCurrentBranch updateInstead\``,
        { taskId: job.taskId, cause: err },
      );
    }
    throw err;
  }
  await ws.remove();
  return { type: 'deploy.succeeded', commit: merged, target: `${job.task.repo}#${base}`, usage: emptyUsage() };
}
