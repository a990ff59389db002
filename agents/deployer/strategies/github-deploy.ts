/**
 * What the GitHub deploy strategies share: their input, a durable wait, and the error a failed
 * deploy leaves with (the reason names the check, run or deployment with its link).
 *
 * A wait is a poll loop inside the deploy job. The job worker keeps the job alive with
 * heartbeats while it polls; if the deployer dies, the job is delivered again and the strategy
 * finds what it started on GitHub (a merged pull request, a dispatched run, a deployment carrying
 * the job id) instead of starting it twice. The deadline counts from when the orchestrator sent
 * the job, so a redelivery never extends it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobContext } from '../../../core/bus/job-worker.js';
import type { DeployRequest, GitHubSource } from '../../../core/bus/messages.js';
import type { GitHubDeployConfig } from '../../../core/config.js';
import { StagegateError } from '../../../core/errors.js';
import type { GitHubOctokit } from '../../../core/github/client.js';

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now(), sleep: (ms) => sleep(ms) };

export interface GitHubDeployInput {
  job: DeployRequest;
  source: GitHubSource;
  octokit: GitHubOctokit;
  settings: GitHubDeployConfig;
  ctx: JobContext;
  clock: Clock;
}

export function deployFailed(job: DeployRequest, reason: string, details: Record<string, unknown> = {}): StagegateError {
  return new StagegateError('DEPLOY_FAILED', reason, { taskId: job.taskId, details });
}

/** What one look at GitHub found: done with a value, or still waiting for something (in words). */
export type Observation<T> = { done: T } | { waiting: string };

/**
 * Looks with `observe` every `pollMs` until it is done (or throws: a red check, a failed run),
 * reporting each new "waiting for …" once as progress. Past the deadline, fails saying what it
 * still waited for.
 */
export async function pollUntilDone<T>(input: GitHubDeployInput, what: string, observe: () => Promise<Observation<T>>): Promise<T> {
  const { job, settings, clock, ctx } = input;
  const deadline = Date.parse(job.sentAt) + settings.timeoutMs;
  let reported = '';
  for (;;) {
    const seen = await observe();
    if ('done' in seen) return seen.done;
    if (seen.waiting !== reported) {
      reported = seen.waiting;
      await ctx.progress(`waiting for ${seen.waiting}`);
    }
    const left = deadline - clock.now();
    if (left <= 0) {
      throw deployFailed(job, `timed out after ${formatMs(settings.timeoutMs)} waiting for ${what}: still waiting for ${seen.waiting}`, { timeoutMs: settings.timeoutMs });
    }
    await clock.sleep(Math.min(settings.pollMs, left));
  }
}

/** `{taskId}`, `{branch}`, `{commit}` and `{issue}` in a configured value, filled in. */
export function fillPlaceholders(value: string, job: DeployRequest, source: GitHubSource): string {
  const values: Record<string, string> = { taskId: job.taskId, branch: job.branch, commit: job.commit, issue: String(source.issueNumber) };
  return value.replace(/\{(taskId|branch|commit|issue)\}/g, (_m, name: string) => values[name] ?? '');
}

export function formatMs(ms: number): string {
  if (ms >= 60_000) return `${Math.round(ms / 60_000)} min`;
  return ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}
