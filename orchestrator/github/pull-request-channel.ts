/**
 * The task's pull request, kept by serve (which holds the GitHub credentials; agents only hand
 * over commits through the git gateway). A durable follower of applied events:
 *
 * - `code.committed` opens the pull request from the task's branch once (`Closes #N`, the plan,
 *   the coder's summary), or brings its title and body up to date on later rounds, and links it
 *   to the task in the issue index (which the status comment and the commands read);
 * - `review.approved` / `review.changes_requested` posts the reviewer's verdict as a review of
 *   the pull request, once per review job, with its comments on their lines where the diff has
 *   them. Stagegate opened the pull request, and GitHub lets no one approve or request changes
 *   on their own pull request, so the review is a `COMMENT` review that states the verdict.
 *
 * Every write looks before it creates: an open pull request for the branch is found by its head,
 * a posted review by the job's marker in its body. The pull request's text is built from the task
 * record (its latest commit), so a redelivered or replayed event changes nothing twice and never
 * puts an older round back.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import type { CodeCommitted, ReviewApproved, ReviewChangesRequested, TaskEventRecorded } from '../../core/bus/messages.js';
import { GITHUB_PR_CONSUMER } from '../../core/bus/subjects.js';
import { gitHubStatusOf, listAll, type GitHubClient, type GitHubOctokit } from '../../core/github/client.js';
import { errorMessage, isStagegateError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import type { TaskRecord } from '../../core/task-record.js';
import { followAppliedEvents, type FollowingEvents } from '../channels/follow-events.js';
import type { TaskClient } from '../task-client.js';
import type { IssueIndex, LinkedPullRequest } from './issue-index.js';
import { linesInPatch, pullRequestBody, pullRequestTitle, reviewMarker, reviewText } from './pull-request-text.js';

const PullRequest = z.object({
  number: z.number().int().positive(),
  html_url: z.string(),
  title: z.string(),
  body: z.string().nullable(),
  state: z.string(),
  head: z.object({ ref: z.string() }),
});
type PullRequest = z.infer<typeof PullRequest>;
const Reviews = z.array(z.object({ id: z.number(), body: z.string().nullable().optional() }));
const Files = z.array(z.object({ filename: z.string(), patch: z.string().optional() }));

export interface PullRequestDeps {
  tasks: Pick<TaskClient, 'get'>;
  index: Pick<IssueIndex, 'linkPullRequest' | 'pullRequestOf'>;
  github: Pick<GitHubClient, 'forRepository'>;
  /** Brings the task's status comment up to date (it shows the pull request once linked). */
  refreshStatus(taskId: string): Promise<void>;
  log: Logger;
}

export interface PullRequestChannel {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createPullRequestChannel(deps: PullRequestDeps & { nc: NatsConnection }): PullRequestChannel {
  let following: FollowingEvents | undefined;
  return {
    async start() {
      following = await followAppliedEvents({ nc: deps.nc, consumer: GITHUB_PR_CONSUMER, log: deps.log, handle: (entry) => onAppliedEvent(deps, entry) });
    },
    async stop() {
      await following?.stop();
    },
  };
}

export async function onAppliedEvent(deps: PullRequestDeps, entry: TaskEventRecorded): Promise<void> {
  if (!entry.accepted) return;
  const event = entry.event;
  if (event.type !== 'code.committed' && event.type !== 'review.approved' && event.type !== 'review.changes_requested') return;
  let record: TaskRecord;
  try {
    record = await deps.tasks.get(entry.taskId);
  } catch (err) {
    if (isStagegateError(err, 'TASK_UNKNOWN')) return;
    throw err;
  }
  if (record.context.spec.source === undefined) return;
  if (event.type !== 'code.committed') return postReview(deps, record, event);
  // The record's latest commit, not the event's: a late redelivery never puts an older round back.
  const latest = record.context.implementation;
  await ensurePullRequest(deps, record, latest === null ? event : { branch: event.branch, commit: latest.commit, summary: latest.summary });
}

/** Opens the task's pull request, or updates it; links it to the task either way. */
export async function ensurePullRequest(deps: PullRequestDeps, record: TaskRecord, commit: Pick<CodeCommitted, 'branch' | 'commit' | 'summary'>): Promise<LinkedPullRequest | undefined> {
  const { context } = record;
  const source = requiredSource(record);
  const { owner, repo } = source;
  const octokit = await clientFor(deps, record);
  const log = deps.log.child({ taskId: context.taskId, owner, repo, branch: commit.branch });
  const title = pullRequestTitle({ title: context.spec.title, issueNumber: source.issueNumber });
  const body = pullRequestBody({ taskId: context.taskId, title: context.spec.title, issueNumber: source.issueNumber, plan: context.plan, summary: commit.summary, commit: commit.commit });

  let pr = await findOpenPullRequest(octokit, owner, repo, commit.branch, context.taskId);
  if (pr === undefined) {
    try {
      const reply = await octokit.rest.pulls.create({ owner, repo, head: commit.branch, base: context.spec.base, title, body });
      pr = parseAt(PullRequest, reply.data, `GitHub reply to the pull request from ${commit.branch}`, context.taskId);
      log.info({ pullRequest: pr.number }, 'github pull request opened');
    } catch (err) {
      if (gitHubStatusOf(err) !== 422) throw err;
      // 422: one already exists (another process opened it a moment ago), so take that one; or
      // there is nothing to open (no such branch, no commits on it), which trying again will not change.
      pr = await findOpenPullRequest(octokit, owner, repo, commit.branch, context.taskId);
      if (pr === undefined) {
        log.warn({ err: errorMessage(err) }, 'github pull request not opened');
        return undefined;
      }
    }
  } else if (pr.title !== title || (pr.body ?? '') !== body) {
    await octokit.rest.pulls.update({ owner, repo, pull_number: pr.number, title, body });
    log.info({ pullRequest: pr.number }, 'github pull request updated');
  }
  const linked = { number: pr.number, url: pr.html_url };
  const known = await deps.index.pullRequestOf(context.taskId);
  if (known?.number !== linked.number) {
    await deps.index.linkPullRequest({ owner, repo, ...linked }, context.taskId);
    await deps.refreshStatus(context.taskId);
  }
  return linked;
}

/** Posts the verdict of one review job as a review of the pull request, unless it is there already. */
export async function postReview(deps: PullRequestDeps, record: TaskRecord, event: ReviewApproved | ReviewChangesRequested): Promise<void> {
  const { context } = record;
  const { owner, repo } = requiredSource(record);
  const octokit = await clientFor(deps, record);
  const log = deps.log.child({ taskId: context.taskId, owner, repo, jobId: event.jobId });
  const implementation = context.implementation;
  const pr =
    (await deps.index.pullRequestOf(context.taskId)) ??
    (implementation === null ? undefined : await ensurePullRequest(deps, record, { branch: context.branch, commit: implementation.commit, summary: implementation.summary }));
  if (pr === undefined) {
    log.warn('review not posted: the task has no pull request');
    return;
  }
  const marker = reviewMarker(event.jobId);
  const reviews = parseAt(
    Reviews,
    await listAll(octokit.paginate.iterator(octokit.rest.pulls.listReviews, { owner, repo, pull_number: pr.number, per_page: 100 }), `reviews of ${owner}/${repo}#${pr.number}`),
    `GitHub reviews of ${owner}/${repo}#${pr.number}`,
    context.taskId,
  );
  if (reviews.some((r) => r.body?.includes(marker) === true)) return;

  const files = parseAt(
    Files,
    await listAll(octokit.paginate.iterator(octokit.rest.pulls.listFiles, { owner, repo, pull_number: pr.number, per_page: 100 }), `files of ${owner}/${repo}#${pr.number}`),
    `GitHub files of ${owner}/${repo}#${pr.number}`,
    context.taskId,
  );
  // GitHub leaves out the patch of a large file: its lines are tried, and refused lines fall back below.
  const diffLines = new Map(files.map((f) => [f.filename, f.patch === undefined ? ('unknown' as const) : linesInPatch(f.patch)]));
  const input = { jobId: event.jobId, verdict: event.verdict, testsPassed: event.testsPassed, security: event.security, diffLines };
  const text = reviewText(input);
  try {
    await octokit.rest.pulls.createReview({ owner, repo, pull_number: pr.number, event: 'COMMENT', body: text.body, comments: text.comments });
  } catch (err) {
    // 422: a line GitHub will not take a comment on; every comment goes in the text instead.
    if (gitHubStatusOf(err) !== 422 || text.comments.length === 0) throw err;
    log.warn({ comments: text.comments.length }, 'github refused the review line comments; posting them in the review text');
    await octokit.rest.pulls.createReview({ owner, repo, pull_number: pr.number, event: 'COMMENT', body: reviewText(input, false).body });
  }
  log.info({ pullRequest: pr.number, decision: event.verdict.decision, lineComments: text.comments.length }, 'github review posted');
}

async function findOpenPullRequest(octokit: GitHubOctokit, owner: string, repo: string, branch: string, taskId: string): Promise<PullRequest | undefined> {
  const open = await listAll(octokit.paginate.iterator(octokit.rest.pulls.list, { owner, repo, head: `${owner}:${branch}`, state: 'open', per_page: 100 }), `pull requests of ${owner}/${repo} from ${branch}`);
  return parseAt(z.array(PullRequest), open, `GitHub pull requests of ${owner}/${repo} from ${branch}`, taskId).find((p) => p.head.ref === branch);
}

function requiredSource(record: TaskRecord) {
  const source = record.context.spec.source;
  if (source === undefined) throw new Error(`task ${record.context.taskId} did not come from GitHub`);
  return source;
}

function clientFor(deps: PullRequestDeps, record: TaskRecord): Promise<GitHubOctokit> {
  const { owner, repo, installationId } = requiredSource(record);
  return deps.github.forRepository({ owner, repo, ...(installationId === undefined ? {} : { installationId }) });
}
