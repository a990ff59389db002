/**
 * The `merge` strategy: the task's pull request is merged once the checks on the job's commit
 * are green, with the configured method, and its branch is deleted. The job's commit is the head
 * the deploy gate was passed for, and it merges exactly that (`sha` on the merge call): if the
 * branch moved since, GitHub refuses with 409 and the task fails rather than ship a commit nobody
 * approved; the refusal is reported, never retried. A pull request found already merged (a
 * redelivered job whose first delivery merged it) is done, and only the branch clean-up is redone.
 * One not opened yet (serve opens it when the code is committed) is waited for.
 */
import { z } from 'zod';
import type { JobOutcome } from '../../../core/bus/job-worker.js';
import { gitHubStatusOf, listAll } from '../../../core/github/client.js';
import { parseAt } from '../../../core/parse.js';
import { emptyUsage } from '../../../core/task-record.js';
import { describeCheck, judgeChecks, readCommitChecks } from '../../../core/github/commit-checks.js';
import { deployFailed, pollUntilDone, type GitHubDeployInput } from './github-deploy.js';

const PullRequest = z.object({
  number: z.number().int().positive(),
  html_url: z.string(),
  state: z.string(),
  merged_at: z.string().nullable(),
  merge_commit_sha: z.string().nullable().optional(),
  head: z.object({ ref: z.string(), sha: z.string() }),
});
type PullRequest = z.infer<typeof PullRequest>;

const MergeReply = z.object({ sha: z.string(), merged: z.boolean() });

export async function deployByMerge(input: GitHubDeployInput): Promise<JobOutcome> {
  const { job, octokit, settings, ctx } = input;
  const repo = { owner: input.source.owner, repo: input.source.repo };
  // serve opens the pull request when the code is committed; a deploy that overtakes it waits for it.
  let pr = await pollUntilDone<PullRequest>(input, `a pull request from ${job.branch} in ${repo.owner}/${repo.repo} to merge`, async () => {
    const found = await findPullRequest(input);
    return found === undefined ? { waiting: `the pull request from ${job.branch} to be opened` } : { done: found };
  });
  if (pr.merged_at === null) {
    if (pr.state !== 'open') throw deployFailed(job, `pull request #${pr.number} was closed without merging: ${pr.html_url}`, { url: pr.html_url });
    if (pr.head.sha !== job.commit) {
      throw deployFailed(job, `the branch ${job.branch} moved since the deploy gate was passed (head ${pr.head.sha.slice(0, 10)}, approved ${job.commit.slice(0, 10)}): not merging a commit nobody approved; ${pr.html_url}`, { url: pr.html_url });
    }
    const open = pr;
    await pollUntilDone(input, `the checks on ${job.commit.slice(0, 10)} of pull request #${open.number} (${open.html_url})`, async () => {
      const verdict = judgeChecks(await readCommitChecks(octokit, repo, job.commit), settings.requiredChecks);
      if (verdict.kind === 'red') {
        throw deployFailed(job, `checks failed on pull request #${open.number}: ${verdict.failed.map(describeCheck).join('; ')}`, { url: verdict.failed[0]?.url ?? open.html_url });
      }
      return verdict.kind === 'green' ? { done: verdict } : { waiting: `checks: ${verdict.waiting.join(', ')}` };
    });
    await ctx.progress(`checks green; merging pull request #${open.number} (${settings.mergeMethod})`);
    pr = await merge(input, open);
  }
  await deleteBranch(input, job.branch);
  return { type: 'deploy.succeeded', commit: pr.merge_commit_sha ?? job.commit, target: `${repo.owner}/${repo.repo}#${job.task.base} (pull request #${pr.number}, ${pr.html_url})`, usage: emptyUsage() };
}

/** The task's pull request: an open one for the branch, else one merged from it. */
async function findPullRequest({ octokit, source, job }: GitHubDeployInput): Promise<PullRequest | undefined> {
  const { owner, repo } = source;
  const pulls = await listAll(
    octokit.paginate.iterator(octokit.rest.pulls.list, { owner, repo, head: `${owner}:${job.branch}`, base: job.task.base, state: 'all', per_page: 100 }),
    `pull requests of ${owner}/${repo} from ${job.branch}`,
  );
  const parsed = parseAt(z.array(PullRequest), pulls, `GitHub pull requests of ${owner}/${repo} from ${job.branch}`, job.taskId).filter((p) => p.head.ref === job.branch);
  return parsed.find((p) => p.state === 'open') ?? parsed.find((p) => p.merged_at !== null && p.head.sha === job.commit) ?? parsed.find((p) => p.merged_at !== null);
}

async function merge(input: GitHubDeployInput, pr: PullRequest): Promise<PullRequest> {
  const { job, octokit, source, settings } = input;
  const { owner, repo } = source;
  try {
    const reply = await octokit.rest.pulls.merge({ owner, repo, pull_number: pr.number, sha: job.commit, merge_method: settings.mergeMethod, commit_title: `${job.task.title} (#${pr.number})` });
    const merged = parseAt(MergeReply, reply.data, `GitHub merge of ${owner}/${repo}#${pr.number}`, job.taskId);
    return { ...pr, state: 'closed', merged_at: new Date().toISOString(), merge_commit_sha: merged.sha };
  } catch (err) {
    const status = gitHubStatusOf(err);
    if (status !== 405 && status !== 409) throw err;
    // Merged meanwhile (another delivery of this job), or GitHub refuses: say why, with the link.
    const now = parseAt(PullRequest, (await octokit.rest.pulls.get({ owner, repo, pull_number: pr.number })).data, `GitHub pull request ${owner}/${repo}#${pr.number}`, job.taskId);
    if (now.merged_at !== null) return now;
    throw deployFailed(job, `GitHub would not merge pull request #${pr.number} (${status === 409 ? `the branch moved since ${job.commit.slice(0, 10)} was approved` : 'not mergeable'}): ${pr.html_url}`, { url: pr.html_url, cause: String(err) });
  }
}

/** Deletes the merged branch; one that is gone already (a redelivery, or GitHub's auto-delete) is fine. */
async function deleteBranch({ octokit, source, ctx }: GitHubDeployInput, branch: string): Promise<void> {
  try {
    await octokit.rest.git.deleteRef({ owner: source.owner, repo: source.repo, ref: `heads/${branch}` });
    await ctx.progress(`deleted branch ${branch}`);
  } catch (err) {
    const status = gitHubStatusOf(err);
    if (status !== 422 && status !== 404) throw err;
  }
}
