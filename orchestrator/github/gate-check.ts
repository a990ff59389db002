/**
 * The `stagegate` check on the head of a GitHub task's branch, so branch protection can
 * require the deploy gate: in progress while the task works or waits, success only once the
 * deploy gate was passed for that very commit, failure when the task failed or was cancelled or
 * the deploy gate rejected that commit. A new head gets a run of its own, in progress: the check
 * fails closed.
 *
 * Reconciled from the task record after every applied event, looking before it writes: the
 * latest `stagegate` run on the commit is left alone when it already says the same, updated while
 * it is not completed, and a completed run that must change gets a new run beside it. A retried
 * or redelivered event therefore creates nothing twice. When the branch moves, a run still in
 * progress on the commit it left fails, superseded. GitHub lets only Apps write check runs
 * (`checks: write`); with a token the same check is a commit status (context `stagegate`:
 * pending, success or failure, its description the run's title), which branch protection can
 * require just the same, written by the same look-before-write rules.
 */
import { z } from 'zod';
import { gitHubStatusOf, type GitHubOctokit } from '../../core/github/client.js';
import { isStagegateError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import type { TaskRecord } from '../../core/task-record.js';
import { gateStatusOf, shortSha, staleApprovals } from '../gate-policy.js';
import type { TaskClient } from '../task-client.js';
import type { RepositoryClients } from './payloads.js';

export const CHECK_NAME = 'stagegate';
const CHECK_PERMISSIONS = { checks: 'write' } as const;
/** GitHub's limit on a commit status's description. */
const STATUS_DESCRIPTION_MAX = 140;

/** What the check run on the head should say. */
export type GateCheck = {
  sha: string;
  title: string;
  summary: string;
} & ({ status: 'in_progress' } | { status: 'completed'; conclusion: 'success' | 'failure' });

const FULL_SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** The check the task's head should carry; undefined before the task has a commit on GitHub. Pure. */
export function gateCheckOf(record: TaskRecord): GateCheck | undefined {
  const { context, state } = record;
  const sha = context.head;
  if (sha === null || !FULL_SHA.test(sha)) return undefined;
  const short = shortSha(sha);
  if ((state === 'deploying' || state === 'done') && context.deployCommit === sha) {
    const approvals = context.decisions.filter((d) => d.gate === 'deploy' && d.visit === context.gateVisits.deploy && d.counted && d.decision === 'approve' && d.sha === sha);
    return { sha, status: 'completed', conclusion: 'success', title: `Deploy gate passed for ${short}`, summary: `Approved for ${sha} by ${approvals.map((d) => d.by).join(', ') || 'the gate policy'}.` };
  }
  if (state === 'failed' || state === 'cancelled') {
    return { sha, status: 'completed', conclusion: 'failure', title: `Task ${state}`, summary: context.error?.reason ?? `The task is ${state}.` };
  }
  const rejected = context.decisions.findLast((d) => d.gate === 'deploy' && d.counted && d.decision === 'reject' && d.sha === sha);
  if (rejected !== undefined && state !== 'awaitingDeployApproval') {
    return { sha, status: 'completed', conclusion: 'failure', title: `Deploy gate rejected ${short}`, summary: `Rejected by ${rejected.by}${rejected.comment === undefined ? '' : `: ${rejected.comment}`}` };
  }
  const gate = gateStatusOf(state, context);
  if (gate?.gate === 'deploy') {
    const stale = staleApprovals(context, 'deploy').map((d) => `Approval by ${d.by} for ${shortSha(d.sha ?? '')} is stale: the branch moved to ${short}.`);
    return { sha, status: 'in_progress', title: `Waiting at the deploy gate for ${short}`, summary: [`${gate.approvals} of ${gate.required} approvals for ${sha}.`, ...stale].join('\n') };
  }
  return { sha, status: 'in_progress', title: `The deploy gate has not passed for ${short}`, summary: `The task is ${state}.` };
}

const CheckRuns = z.object({
  check_runs: z.array(
    z.object({
      id: z.number().int().positive(),
      status: z.string(),
      conclusion: z.string().nullable(),
      output: z.object({ title: z.string().nullable() }).partial().optional(),
    }),
  ),
});

export interface GateCheckDeps {
  tasks: Pick<TaskClient, 'get'>;
  github: RepositoryClients;
  /** A check run as a GitHub App; a commit status with a token, which cannot write check runs. */
  via: 'check-run' | 'commit-status';
  log: Logger;
}

const CombinedStatus = z.object({ statuses: z.array(z.object({ context: z.string(), state: z.string(), description: z.string().nullish() })) });

/** Repositories already told about in the log as refusing check runs. */
const refusedOnce = new Set<string>();

/** A push moved the task's branch from `before` to `after`: the run left in progress on `before` can never pass. */
export function supersededCheck(before: string, after: string): GateCheck {
  return { sha: before, status: 'completed', conclusion: 'failure', title: `Superseded by ${shortSha(after)}`, summary: `The branch moved to ${after}: the deploy gate is decided for that commit now.` };
}

export async function reconcileGateCheck(deps: GateCheckDeps, taskId: string, moved?: { before: string; after: string }): Promise<void> {
  let record: TaskRecord;
  try {
    record = await deps.tasks.get(taskId);
  } catch (err) {
    if (isStagegateError(err, 'TASK_UNKNOWN')) return;
    throw err;
  }
  const source = record.context.spec.source;
  const desired = gateCheckOf(record);
  if (source === undefined || desired === undefined) return;
  const { owner, repo } = source;
  // A token of its own, scoped to what it does (App installation tokens are minted with exactly this).
  const octokit = await deps.github.forRepository({ owner, repo, ...(source.installationId === undefined ? {} : { installationId: source.installationId }) }, { permissions: CHECK_PERMISSIONS });
  const log = deps.log.child({ taskId, owner, repo, sha: desired.sha });
  const { write, what, needs } = WRITERS[deps.via];
  try {
    if (moved !== undefined && moved.before !== desired.sha) await write(octokit, { owner, repo, taskId }, supersededCheck(moved.before, moved.after), log, { onlyOpen: true });
    await write(octokit, { owner, repo, taskId }, desired, log);
  } catch (err) {
    const status = gitHubStatusOf(err);
    // 403: an App without `checks: write` or a token without `repo:status`; 422: GitHub does not have that commit (yet).
    if (status !== 403 && status !== 422) throw err;
    const key = `${owner}/${repo}:${deps.via}:${status}`;
    if (!refusedOnce.has(key)) log.warn({ status }, `github ${what} not written: ${status === 403 ? needs : 'GitHub does not know the commit'}`);
    refusedOnce.add(key);
  }
}

type WriteOptions = { onlyOpen?: boolean };
type Writer = (octokit: GitHubOctokit, where: { owner: string; repo: string; taskId: string }, desired: GateCheck, log: Logger, options?: WriteOptions) => Promise<void>;

/** The `stagegate` commit status: pending for a run in progress, else the run's conclusion. */
async function writeStatus(octokit: GitHubOctokit, where: { owner: string; repo: string; taskId: string }, desired: GateCheck, log: Logger, options: WriteOptions = {}): Promise<void> {
  const { owner, repo, taskId } = where;
  const reply = await octokit.rest.repos.getCombinedStatusForRef({ owner, repo, ref: desired.sha, per_page: 100 });
  const latest = parseAt(CombinedStatus, reply.data, `GitHub commit status of ${owner}/${repo}@${desired.sha}`, taskId).statuses.find((s) => s.context === CHECK_NAME);
  const state = desired.status === 'completed' ? desired.conclusion : 'pending';
  const description = desired.title.slice(0, STATUS_DESCRIPTION_MAX);
  if (latest !== undefined && latest.state === state && latest.description === description) return;
  if (options.onlyOpen === true && latest?.state !== 'pending') return;
  await octokit.rest.repos.createCommitStatus({ owner, repo, sha: desired.sha, state, context: CHECK_NAME, description });
  log.info({ state }, 'github commit status written');
}

async function writeCheck(octokit: GitHubOctokit, where: { owner: string; repo: string; taskId: string }, desired: GateCheck, log: Logger, options: WriteOptions = {}): Promise<void> {
  const { owner, repo, taskId } = where;
  const reply = await octokit.rest.checks.listForRef({ owner, repo, ref: desired.sha, check_name: CHECK_NAME, filter: 'latest', per_page: 100 });
  const runs = parseAt(CheckRuns, reply.data, `GitHub check runs of ${owner}/${repo}@${desired.sha}`, taskId).check_runs;
  const latest = runs.reduce<(typeof runs)[number] | undefined>((a, r) => (a === undefined || r.id > a.id ? r : a), undefined);
  const conclusion = desired.status === 'completed' ? desired.conclusion : null;
  if (latest !== undefined && latest.status === desired.status && latest.conclusion === conclusion && latest.output?.title === desired.title) return;
  // A superseded commit's run is closed only if one is open: none is created for it.
  if (options.onlyOpen === true && (latest === undefined || latest.status === 'completed')) return;
  const fields = {
    status: desired.status,
    ...(conclusion === null ? {} : { conclusion }),
    external_id: taskId,
    output: { title: desired.title, summary: desired.summary },
  };
  if (latest !== undefined && latest.status !== 'completed') {
    await octokit.rest.checks.update({ owner, repo, check_run_id: latest.id, ...fields });
    log.info({ checkRun: latest.id, status: desired.status, conclusion }, 'github check run updated');
    return;
  }
  const created = await octokit.rest.checks.create({ owner, repo, name: CHECK_NAME, head_sha: desired.sha, ...fields });
  log.info({ checkRun: created.data.id, status: desired.status, conclusion }, 'github check run created');
}

const WRITERS: Record<GateCheckDeps['via'], { write: Writer; what: string; needs: string }> = {
  'check-run': { write: writeCheck, what: 'check run', needs: 'the GitHub App needs checks: write' },
  'commit-status': { write: writeStatus, what: 'commit status', needs: 'the token needs the repo:status scope' },
};
