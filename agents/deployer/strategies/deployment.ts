/**
 * The `deployment` strategy: create a GitHub Deployment of the task's branch (or the configured
 * ref) for the configured environment, and wait for whatever deploys it (a CD system listening
 * for `deployment` events) to post a final status: `success` deploys; `failure` or `error` fails
 * the task with the status's log link. The deployment's payload carries the task and job ids,
 * so a redelivered job finds the deployment its first delivery created instead of making another.
 */
import { z } from 'zod';
import type { JobOutcome } from '../../../core/bus/job-worker.js';
import { gitHubStatusOf, listAll } from '../../../core/github/client.js';
import { errorMessage } from '../../../core/errors.js';
import { parseAt } from '../../../core/parse.js';
import { emptyUsage } from '../../../core/task-record.js';
import { deployFailed, fillPlaceholders, pollUntilDone, type GitHubDeployInput } from './github-deploy.js';

const Deployment = z.object({
  id: z.number().int().positive(),
  sha: z.string(),
  environment: z.string(),
  /** An object, or (older deployments) its JSON text. */
  payload: z.union([z.record(z.string(), z.unknown()), z.string()]).nullish(),
});
type Deployment = z.infer<typeof Deployment>;
const Payload = z.record(z.string(), z.unknown());

const DeploymentStatus = z.object({
  state: z.string(),
  log_url: z.string().nullish(),
  target_url: z.string().nullish(),
  environment_url: z.string().nullish(),
  description: z.string().nullish(),
});
type DeploymentStatus = z.infer<typeof DeploymentStatus>;

const FINAL_FAILURES = new Set(['failure', 'error']);

export async function deployByDeployment(input: GitHubDeployInput): Promise<JobOutcome> {
  const { job, settings, ctx, source } = input;
  const environment = fillPlaceholders(settings.environment, job, source);
  const ref = settings.ref === undefined ? job.branch : fillPlaceholders(settings.ref, job, source);

  let deployment = await findDeployment(input, environment);
  if (deployment === undefined) {
    deployment = await createDeployment(input, ref, environment);
    await ctx.progress(`created deployment ${deployment.id} of ${ref} to ${environment}`);
  } else {
    await ctx.progress(`found deployment ${deployment.id} created for this job; waiting for its status`);
  }
  const id = deployment.id;
  const final = await pollUntilDone<DeploymentStatus>(input, `deployment ${id} to ${environment}`, async () => {
    const statuses = await listStatuses(input, id);
    const latest = statuses[0];
    const success = statuses.find((s) => s.state === 'success');
    if (success !== undefined) return { done: success };
    if (latest !== undefined && FINAL_FAILURES.has(latest.state)) return { done: latest };
    return { waiting: `deployment ${id} to ${environment} (${latest?.state ?? 'no status yet'})` };
  });
  const link = final.log_url || final.target_url || undefined;
  if (final.state !== 'success') {
    throw deployFailed(job, `deployment ${id} to ${environment} ended in ${final.state}${final.description ? ` (${final.description})` : ''}${link === undefined ? '' : `: ${link}`}`, { url: link });
  }
  const where = final.environment_url || link;
  return { type: 'deploy.succeeded', commit: deployment.sha, target: `${environment}${where ? ` (${where})` : ''}, deployment ${id}`, usage: emptyUsage() };
}

/** This job's deployment: the one to the environment whose payload names the job. */
async function findDeployment({ octokit, source, job }: GitHubDeployInput, environment: string): Promise<Deployment | undefined> {
  const { owner, repo } = source;
  const found = await listAll(octokit.paginate.iterator(octokit.rest.repos.listDeployments, { owner, repo, environment, task: 'deploy', per_page: 100 }), `deployments of ${owner}/${repo} to ${environment}`, 1_000);
  return parseAt(z.array(Deployment), found, `GitHub deployments of ${owner}/${repo}`, job.taskId).find((d) => payloadOf(d).stagegateJobId === job.msgId);
}

async function createDeployment({ octokit, source, job }: GitHubDeployInput, ref: string, environment: string): Promise<Deployment> {
  const { owner, repo } = source;
  try {
    const reply = await octokit.rest.repos.createDeployment({
      owner,
      repo,
      ref,
      environment,
      task: 'deploy',
      auto_merge: false,
      description: `Stagegate task ${job.taskId}: ${job.task.title}`.slice(0, 140),
      payload: { stagegateTaskId: job.taskId, stagegateJobId: job.msgId, commit: job.commit, issue: source.issueNumber },
    });
    return parseAt(Deployment, reply.data, `GitHub reply to the deployment of ${ref}`, job.taskId);
  } catch (err) {
    // 409: GitHub checked the commit's statuses and they are not all green.
    if (gitHubStatusOf(err) === 409) throw deployFailed(job, `GitHub refused the deployment of ${ref} to ${environment}: ${errorMessage(err)}`);
    throw err;
  }
}

/** Newest first, as GitHub lists them. */
async function listStatuses({ octokit, source, job }: GitHubDeployInput, id: number): Promise<DeploymentStatus[]> {
  const { owner, repo } = source;
  const reply = await octokit.rest.repos.listDeploymentStatuses({ owner, repo, deployment_id: id, per_page: 100 });
  return parseAt(z.array(DeploymentStatus), reply.data, `GitHub statuses of deployment ${id}`, job.taskId);
}

function payloadOf(d: Deployment): Record<string, unknown> {
  if (typeof d.payload !== 'string') return d.payload ?? {};
  try {
    return Payload.safeParse(JSON.parse(d.payload)).data ?? {};
  } catch {
    return {};
  }
}
