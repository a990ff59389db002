/**
 * The `workflow` strategy: dispatch the configured `workflow_dispatch` workflow on the task's
 * branch (or the configured ref) and wait for the run's conclusion; success deploys, any other
 * conclusion fails the task with the run's link.
 *
 * GitHub's API does not show a run's inputs, so a redelivered job finds the run its first
 * delivery dispatched by what it can see: a `workflow_dispatch` run of that workflow on that
 * branch (and, on the task's branch, at the reviewed commit) created after the job was sent
 * (less `CLOCK_SKEW_MS`) and not finished before it. A run of an earlier attempt finished before
 * the retry's job was sent, so it is never taken for this one.
 */
import { z } from 'zod';
import type { JobOutcome } from '../../../core/bus/job-worker.js';

import { parseAt } from '../../../core/parse.js';
import { emptyUsage } from '../../../core/task-record.js';
import { deployFailed, fillPlaceholders, pollUntilDone, type GitHubDeployInput } from './github-deploy.js';

/** How far GitHub's clock may run behind ours and a run still count as this job's. */
const CLOCK_SKEW_MS = 60_000;

const WorkflowRun = z.object({
  id: z.number().int().positive(),
  html_url: z.string(),
  status: z.string().nullable(),
  conclusion: z.string().nullable(),
  head_sha: z.string(),
  head_branch: z.string().nullable(),
  event: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
type WorkflowRun = z.infer<typeof WorkflowRun>;
const WorkflowRuns = z.object({ workflow_runs: z.array(WorkflowRun) });
const DispatchReply = z.object({ workflow_run_id: z.number().int().positive() }).partial().nullish();

export async function deployByWorkflow(input: GitHubDeployInput): Promise<JobOutcome> {
  const { job, settings, ctx } = input;
  const workflow = settings.workflow;
  if (workflow === undefined) throw deployFailed(job, "the workflow strategy needs github.deploy.workflow (STAGEGATE_DEPLOY_WORKFLOW): the workflow to dispatch");
  const ref = settings.ref === undefined ? job.branch : fillPlaceholders(settings.ref, job, input.source);

  let runId = (await findDispatchedRun(input, workflow, ref))?.id;
  if (runId === undefined) {
    runId = await dispatch(input, workflow, ref);
    await ctx.progress(runId === undefined ? `dispatched ${workflow} on ${ref}` : `dispatched ${workflow} on ${ref}: run ${runId}`);
  } else {
    await ctx.progress(`found run ${runId} of ${workflow} dispatched for this job; waiting for it`);
  }

  let known = runId;
  const run = await pollUntilDone<WorkflowRun>(input, `the ${workflow} run on ${ref}`, async () => {
    known ??= (await findDispatchedRun(input, workflow, ref))?.id;
    if (known === undefined) return { waiting: `the ${workflow} run to appear` };
    const current = await readRun(input, known);
    if (current.status !== 'completed') return { waiting: `run ${current.id} (${current.status ?? 'unknown'}): ${current.html_url}` };
    return { done: current };
  });
  if (run.conclusion !== 'success') {
    throw deployFailed(job, `the ${workflow} run concluded ${run.conclusion ?? 'without a conclusion'}: ${run.html_url}`, { url: run.html_url, conclusion: run.conclusion });
  }
  return { type: 'deploy.succeeded', commit: run.head_sha, target: `${workflow} run ${run.id} on ${ref} (${run.html_url})`, usage: emptyUsage() };
}

/** The run this job dispatched, if it did (see the file comment). */
async function findDispatchedRun({ octokit, source, job }: GitHubDeployInput, workflow: string, ref: string): Promise<WorkflowRun | undefined> {
  const { owner, repo } = source;
  const branch = ref.replace(/^refs\/heads\//, '');
  const sent = Date.parse(job.sentAt);
  const pages = octokit.paginate.iterator(octokit.rest.actions.listWorkflowRuns, {
    owner,
    repo,
    workflow_id: workflow,
    event: 'workflow_dispatch',
    branch,
    ...(branch === job.branch ? { head_sha: job.commit } : {}),
    created: `>=${new Date(sent - CLOCK_SKEW_MS).toISOString().slice(0, 19)}Z`,
    per_page: 100,
  });
  const runs: WorkflowRun[] = [];
  for await (const page of pages) {
    runs.push(...parseAt(WorkflowRuns, { workflow_runs: page.data }, `GitHub runs of ${workflow} in ${owner}/${repo}`, job.taskId).workflow_runs);
    if (runs.length >= 300) break;
  }
  return runs
    .filter((r) => r.event === 'workflow_dispatch' && r.head_branch === branch && (branch !== job.branch || r.head_sha === job.commit))
    .filter((r) => Date.parse(r.created_at) >= sent - CLOCK_SKEW_MS && !(r.status === 'completed' && Date.parse(r.updated_at) < sent - 1000))
    .sort((a, b) => a.created_at.localeCompare(b.created_at))[0];
}

/** Dispatches the workflow; the run's id when GitHub says it (`return_run_details`), else undefined until it is listed. */
async function dispatch({ octokit, source, job, settings }: GitHubDeployInput, workflow: string, ref: string): Promise<number | undefined> {
  const inputs = Object.fromEntries(Object.entries(settings.inputs).map(([name, value]) => [name, fillPlaceholders(value, job, source)]));
  const reply = await octokit.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
    owner: source.owner,
    repo: source.repo,
    workflow_id: workflow,
    ref,
    inputs,
    return_run_details: true,
  });
  // 204 without details (GitHub Enterprise before run details): the run is found by listing.
  const data: unknown = reply.data;
  return parseAt(DispatchReply, typeof data === 'object' ? data : null, `GitHub reply to the dispatch of ${workflow}`, job.taskId)?.workflow_run_id;
}

async function readRun({ octokit, source, job }: GitHubDeployInput, runId: number): Promise<WorkflowRun> {
  const { owner, repo } = source;
  return parseAt(WorkflowRun, (await octokit.rest.actions.getWorkflowRun({ owner, repo, run_id: runId })).data, `GitHub run ${runId} of ${owner}/${repo}`, job.taskId);
}

