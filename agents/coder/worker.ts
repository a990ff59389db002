/**
 * The coder: in a fresh clone on the task's branch, ask for a patch, apply it, run the tests,
 * and feed any failure back for another attempt; commit and push the branch once it passes.
 * A job that runs out of attempts fails with the last reason, its clone left to inspect.
 */
import type { JobHandler } from '../../core/bus/job-worker.js';
import type { Usage } from '../../core/bus/messages.js';
import { StagegateError, isStagegateError } from '../../core/errors.js';
import { describeResult, runCommand } from '../../core/exec/run-command.js';
import { cloneForJob, remoteBranchExists, type Workspace } from '../../core/git/workspace.js';
import type { ModelClient } from '../../core/model/client.js';
import { loadPrompt } from '../../core/model/load-prompt.js';
import { detectTestCommand } from '../../core/repo/detect-commands.js';
import { keywordsOf, renderRepoView } from '../../core/repo/repo-view.js';
import { addUsage, emptyUsage } from '../../core/task-record.js';
import { CoderReply } from './output.js';
import { applyPatch } from './patch/index.js';
import { renderCoderInput } from './render-input.js';

const PROMPT = loadPrompt(import.meta.url);

export interface CoderDeps {
  model: ModelClient;
  workDir: string;
  commandTimeoutMs: number;
  maxAttempts: number;
}

export function createCoderHandler(deps: CoderDeps): JobHandler<'coder'> {
  return async (job, ctx) => {
    const ws = await cloneForJob({ repo: job.task.repo, workDir: deps.workDir, taskId: job.taskId, name: `implement-${job.attempt}` });
    const resumes = await remoteBranchExists(ws, job.branch);
    await ws.git(['checkout', '--quiet', '-B', job.branch, `origin/${resumes ? job.branch : job.task.base}`]);
    const testCommand = job.task.testCommand ?? (await detectTestCommand(ws.dir));
    const view = await renderRepoView({ dir: ws.dir, focus: job.plan.filesToTouch, keywords: keywordsOf(job.task.title, ...job.plan.filesToTouch) });

    let usage: Usage = emptyUsage();
    const failures: string[] = [];
    for (let attempt = 1; attempt <= deps.maxAttempts; attempt++) {
      await ctx.progress(`attempt ${attempt}: asking the model for a patch`, usage);
      const reply = await deps.model
        .generateStructured({
          taskId: job.taskId,
          role: 'coder',
          instructions: PROMPT,
          input: renderCoderInput(job, view, testCommand, failures),
          schema: CoderReply,
          schemaName: 'patch',
        })
        .catch((err: unknown) => {
          throw withUsage(err, usage);
        });
      usage = addUsage(usage, reply.usage);

      const failure = await tryAttempt(ws, reply.value.patch, testCommand, deps.commandTimeoutMs);
      if (failure !== undefined) {
        failures.push(`Your patch:\n${reply.value.patch}\n\n${failure}`);
        await ctx.progress(`attempt ${attempt} failed: ${failure.split('\n')[0]}`, usage);
        continue;
      }
      await ws.git(['commit', '--quiet', '-m', `${job.task.title}\n\n${reply.value.summary}\n\nStagegate-Task: ${job.taskId} (round ${job.round})`]);
      const commit = (await ws.git(['rev-parse', 'HEAD'])).trim();
      await ws.git(['push', '--quiet', 'origin', `HEAD:refs/heads/${job.branch}`]);
      await ws.remove();
      return { type: 'code.committed', branch: job.branch, commit, summary: reply.value.summary, attempts: attempt, usage };
    }
    throw new StagegateError(
      'PATCH_REJECTED',
      `coder gave up after ${deps.maxAttempts} attempts; last failure: ${lastLine(failures.at(-1) ?? '')}; worktree left at ${ws.dir}`,
      { taskId: job.taskId, details: { usage } },
    );
  };
}

/** Applies the patch and runs the tests; on failure the clone is reset and the reason returned. */
async function tryAttempt(ws: Workspace, patch: string, testCommand: string | undefined, timeoutMs: number): Promise<string | undefined> {
  try {
    await applyPatch(patch, { cwd: ws.dir });
  } catch (err) {
    if (isStagegateError(err, 'PATCH_INVALID') || isStagegateError(err, 'PATCH_REJECTED') || isStagegateError(err, 'PATH_ESCAPE')) {
      return `The patch did not apply (nothing was changed): ${err.message}`;
    }
    throw err;
  }
  await ws.git(['add', '--all']);
  if ((await ws.git(['status', '--porcelain'])).trim() === '') return 'The patch applied but changed nothing.';
  if (testCommand !== undefined) {
    const result = await runCommand(testCommand, { cwd: ws.dir, timeoutMs });
    if (result.exitCode !== 0 || result.timedOut) {
      await ws.git(['reset', '--hard', '--quiet']);
      await ws.git(['clean', '-fdq']);
      return `The patch applied, but the tests failed:\n${describeResult(result)}`;
    }
  }
  return undefined;
}

function withUsage(err: unknown, before: Usage): unknown {
  if (!isStagegateError(err)) return err;
  const spent = (err.details?.usage as Usage | undefined) ?? emptyUsage();
  return new StagegateError(err.code, err.message, {
    cause: err.cause,
    ...(err.taskId === undefined ? {} : { taskId: err.taskId }),
    details: { ...err.details, usage: addUsage(before, spent) },
  });
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines.find((l) => l.startsWith('The patch')) ?? lines.at(-1) ?? '';
}
