/**
 * A person's review of a Stagegate pull request that requests changes
 * (`pull_request_review.submitted`, state `changes_requested`) sends the work back to the coder
 * with the review's text and line comments, as `review.human_changes_requested`. It counts only
 * from someone with at least the command permission on the repository, and only while the task
 * waits at the review or deploy gate; otherwise the person is told so on the pull request and
 * nothing changes. Reviews by bots (ours included) and other states are ignored.
 */
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import type { HumanChangesRequested, InboxMessage, ReviewComment } from '../../core/bus/messages.js';
import { subjects } from '../../core/bus/subjects.js';
import { isStagegateError } from '../../core/errors.js';
import { listAll } from '../../core/github/client.js';
import type { Logger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import type { Permission } from '../../core/policy.js';
import type { TaskRecord, TaskState } from '../../core/task-record.js';
import type { TaskClient } from '../task-client.js';
import { isBot } from './command-parse.js';
import { taskForPullRequest } from './commands.js';
import type { IssueIndex } from './issue-index.js';
import { GitHubUser, PullRequestEnds, Repository, repositoryRefOf, type RepositoryClients } from './payloads.js';
import { hasAtLeast, type PermissionChecker } from './permissions.js';
import type { RoutedDelivery } from './webhook-route.js';

export const PullRequestReviewSubmitted = z.object({
  action: z.literal('submitted'),
  review: z.object({
    id: z.number().int().positive(),
    /** Lower case in webhooks: `approved`, `changes_requested`, `commented`. */
    state: z.string(),
    body: z.string().nullable().default(null),
    html_url: z.string().optional(),
    user: GitHubUser,
  }),
  pull_request: z.object({
    number: z.number().int().positive(),
    html_url: z.string(),
    ...PullRequestEnds,
  }),
  repository: Repository,
  sender: GitHubUser,
  installation: z.object({ id: z.number().int().positive() }).nullish(),
});
export type PullRequestReviewSubmitted = z.infer<typeof PullRequestReviewSubmitted>;

const ReviewCommentReply = z.array(
  z.object({
    pull_request_review_id: z.number().nullable(),
    path: z.string(),
    line: z.number().int().positive().nullish(),
    original_line: z.number().int().positive().nullish(),
    body: z.string(),
  }),
);

/** Where a person's review can send the work back: the gates after the reviewer has spoken. */
const TAKES_REVIEWS: ReadonlySet<TaskState> = new Set(['awaitingReviewApproval', 'awaitingDeployApproval']);

export interface HumanReviewDeps {
  tasks: Pick<TaskClient, 'get'>;
  index: IssueIndex;
  github: RepositoryClients;
  permissions: PermissionChecker;
  commandPermission: Permission;
  botLogin?: string | undefined;
  /** Publishes the event to the task's inbox (Nats-Msg-Id: the review's id, so a redelivery is a no-op). */
  publish(event: HumanChangesRequested): Promise<void>;
  log: Logger;
  now(): Date;
}

export function inboxPublisher(nc: NatsConnection): (event: InboxMessage) => Promise<void> {
  const js = jetstream(nc);
  return async (event) => {
    await js.publish(subjects.inbox(event.taskId), JSON.stringify(event), { msgID: event.msgId });
  };
}

/** Pure routing of a `pull_request_review` delivery (not from a fork: the channel checked): the work it means, or why it is ignored. */
export function routePullRequestReview(deps: HumanReviewDeps, review: PullRequestReviewSubmitted): RoutedDelivery {
  if (review.review.state.toLowerCase() !== 'changes_requested') return { ignored: `a review that is ${review.review.state}, not changes_requested` };
  if (isBot(review.review.user, deps.botLogin)) return { ignored: 'a review by a bot' };
  if (!review.pull_request.head.ref.startsWith('stagegate/')) return { ignored: 'not a Stagegate branch' };
  return { work: 'send the requested changes to the coder', run: () => onChangesRequested(deps, review) };
}

export async function onChangesRequested(deps: HumanReviewDeps, event: PullRequestReviewSubmitted): Promise<void> {
  const ref = repositoryRefOf(event);
  const { owner, repo } = ref;
  const number = event.pull_request.number;
  const login = event.review.user.login;
  const log = deps.log.child({ owner, repo, pullRequest: number, by: `github:${login}`, review: event.review.id });
  const octokit = await deps.github.forRepository(ref);
  const reply = async (text: string) => {
    await octokit.rest.issues.createComment({ owner, repo, issue_number: number, body: `@${login} ${text}` });
  };

  const found = await taskForPullRequest(deps.index, octokit, { owner, repo, number });
  if (found.kind !== 'task') {
    log.info({ found: found.kind }, 'changes requested on a pull request with no task; ignored');
    return;
  }
  const { taskId } = found;
  const permission = await deps.permissions.permissionOf(octokit, { owner, repo }, login);
  if (permission === 'none' || !hasAtLeast(permission, deps.commandPermission)) {
    log.info({ permission }, 'changes requested by someone below the command permission; not sent to the coder');
    return reply(
      `thanks for the review — Stagegate sends requested changes back to its coder only from people with ${deps.commandPermission} permission or more on ${owner}/${repo}, and yours is ${permission}. Nothing changed.`,
    );
  }
  let record: TaskRecord;
  try {
    record = await deps.tasks.get(taskId);
  } catch (err) {
    if (!isStagegateError(err, 'TASK_UNKNOWN')) throw err;
    return reply(`task \`${taskId}\` is still being started; request changes again in a moment. Nothing changed.`);
  }
  if (!TAKES_REVIEWS.has(record.state)) {
    log.info({ state: record.state }, 'changes requested while the task is not at the review or deploy gate');
    return reply(
      `task \`${taskId}\` is ${record.state}: a review requesting changes goes back to the coder while the task waits at the review or deploy gate. Request changes again then (or comment \`/reject <reason>\` at the gate). Nothing changed.`,
    );
  }

  const comments = await reviewComments(octokit, { owner, repo, number, reviewId: event.review.id, taskId });
  await deps.publish({
    type: 'review.human_changes_requested',
    taskId,
    msgId: `${taskId}:pr-review:${event.review.id}`,
    sentAt: deps.now().toISOString(),
    by: `github:${login}`,
    summary: event.review.body ?? '',
    comments,
    ...(event.review.html_url === undefined ? {} : { url: event.review.html_url }),
  });
  log.info({ taskId, comments: comments.length }, 'changes requested on the pull request sent to the coder');
  await reply(`sending task \`${taskId}\` back to the coder with your review (${comments.length} line comment${comments.length === 1 ? '' : 's'}); the status comment follows it.`);
}

/** The review's line comments as the coder reads review comments. */
async function reviewComments(
  octokit: Awaited<ReturnType<RepositoryClients['forRepository']>>,
  where: { owner: string; repo: string; number: number; reviewId: number; taskId: string },
): Promise<ReviewComment[]> {
  const { owner, repo, number } = where;
  const all = await listAll(
    octokit.paginate.iterator(octokit.rest.pulls.listReviewComments, { owner, repo, pull_number: number, per_page: 100 }),
    `review comments of ${owner}/${repo}#${number}`,
  );
  return parseAt(ReviewCommentReply, all, `GitHub review comments of ${owner}/${repo}#${number}`, where.taskId)
    .filter((c) => c.pull_request_review_id === where.reviewId && c.body.trim() !== '' && c.path !== '')
    .map((c) => ({ file: c.path, line: c.line ?? c.original_line ?? null, body: c.body }));
}
