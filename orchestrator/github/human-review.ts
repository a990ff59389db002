/**
 * People's reviews of a Stagegate pull request send the work back to the coder as
 * `review.human_changes_requested`, with the review's line comments, each carrying its GitHub
 * comment id so the coder answers it and serve replies in its thread (`thread-replies.ts`).
 *
 * A batch is one review: GitHub delivers a submitted review (any state, all its line comments)
 * as one `pull_request_review` and one `pull_request_review_comment` per comment, in any order
 * and at once. Each of them carries the whole review, under one message id (the review's): the
 * thread store's claim per comment id lets whichever comes first carry it, the others find it
 * claimed by the same batch, and the task takes the round once. A comment GitHub gives without a
 * review is a batch of its own.
 * Comments go through `review-comment-rules.ts` (no bots unless allow-listed, none marked with
 * the skip marker; a reply goes with the thread before it, unless Stagegate addressed that thread). A `changes_requested` review starts a round even without line
 * comments (its text is the request); other reviews only with comments left to send.
 *
 * It counts only from someone with at least the command permission on the repository (or an
 * allow-listed bot, which the collaborator API cannot rank). While the task waits at the review
 * or deploy gate the batch is a round at once; while the coder (or reviewer, or CI) works, its
 * comments are kept and go as one round when the task is back at a gate (`sendWaitingComments`,
 * or with the next review, whichever comes first); at any other time the person is told so on
 * the pull request and nothing changes. After `maxReviewerRounds` rounds the event still goes to the task, which keeps it
 * at the gate and says why on its status comment: a person decides.
 */
import { z } from 'zod';
import type { HumanChangesRequested, CoderReviewComment, TaskEventRecorded } from '../../core/bus/messages.js';
import { isStagegateError } from '../../core/errors.js';
import { listAll, type GitHubOctokit } from '../../core/github/client.js';
import type { Logger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import type { Permission } from '../../core/policy.js';
import { TaskState, type TaskRecord } from '../../core/task-record.js';
import type { TaskClient } from '../task-client.js';
import { isBot } from './command-parse.js';
import { taskForPullRequest } from './commands.js';
import type { IssueIndex } from './issue-index.js';
import { GitHubUser, PullRequestEnds, Repository, repositoryRefOf, type RepositoryClients } from './payloads.js';
import { hasAtLeast, type PermissionChecker } from './permissions.js';
import { GitHubReviewComment, asCoderComment, isAllowListedBot, isIgnoredBot, whyNotForCoder, type ReviewCommentRules } from './review-comment-rules.js';
import type { DeliveryStore } from './deliveries.js';
import type { ThreadEntry, ThreadStore } from './thread-store.js';
import type { RoutedDelivery } from './webhook-route.js';

const PullRequestPart = z.object({
  number: z.number().int().positive(),
  html_url: z.string(),
  ...PullRequestEnds,
});

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
  pull_request: PullRequestPart,
  repository: Repository,
  sender: GitHubUser,
  installation: z.object({ id: z.number().int().positive() }).nullish(),
});
export type PullRequestReviewSubmitted = z.infer<typeof PullRequestReviewSubmitted>;

export const PullRequestReviewCommentCreated = z.object({
  action: z.literal('created'),
  comment: GitHubReviewComment.extend({ user: GitHubUser, html_url: z.string().optional() }),
  pull_request: PullRequestPart,
  repository: Repository,
  sender: GitHubUser,
  installation: z.object({ id: z.number().int().positive() }).nullish(),
});
export type PullRequestReviewCommentCreated = z.infer<typeof PullRequestReviewCommentCreated>;

/** Where a person's review can send the work back: the gates after the reviewer has spoken. */
const TAKES_REVIEWS: ReadonlySet<TaskState> = new Set(['awaitingReviewApproval', 'awaitingDeployApproval']);
/** Where the task is on its way back to one of those: comments written now wait for the next round. */
const COMES_BACK_TO_A_GATE: ReadonlySet<TaskState> = new Set(['implementing', 'reviewing', 'awaitingChecks', 'awaitingCommandApproval']);

export interface HumanReviewDeps {
  tasks: Pick<TaskClient, 'get'>;
  index: IssueIndex;
  github: RepositoryClients;
  permissions: PermissionChecker;
  commandPermission: Permission;
  botLogin?: string | undefined;
  rules: ReviewCommentRules;
  /** Coder rounds people's reviews may start before a person decides, for a task whose repository names no limit. */
  maxReviewerRounds: number;
  threads: ThreadStore;
  /** Claims of the one answer a review gets on the pull request, whichever of its deliveries gives it. */
  answers: Pick<DeliveryStore, 'claim' | 'release'>;
  /** Publishes the event to the task's inbox (Nats-Msg-Id: the batch's id, so a redelivery is a no-op). */
  publish(event: HumanChangesRequested): Promise<void>;
  log: Logger;
  now(): Date;
}

/** One delivery's worth of review comments, from one reviewer. */
interface ReviewBatch {
  repository: PullRequestReviewSubmitted['repository'];
  installation?: PullRequestReviewSubmitted['installation'];
  number: number;
  reviewer: GitHubUser;
  /**
   * `review` for a submitted review (its `id`; its state, read from GitHub when a comment's
   * delivery carries it), `comment` for one review comment outside any review.
   */
  source: { kind: 'review'; id: number; state?: string | undefined } | { kind: 'comment'; id: number };
  summary: string;
  url?: string | undefined;
}

/** The review states whose comments go to the coder (lower case, as webhooks give them). */
const REVIEW_STATES: ReadonlySet<string> = new Set(['changes_requested', 'commented', 'approved']);

/** Pure routing of a `pull_request_review` delivery (not from a fork: the channel checked): the work it means, or why it is ignored. */
export function routePullRequestReview(deps: HumanReviewDeps, review: PullRequestReviewSubmitted): RoutedDelivery {
  const state = review.review.state.toLowerCase();
  if (!REVIEW_STATES.has(state)) return { ignored: `a review that is ${review.review.state}` };
  if (isIgnoredBot(review.review.user, deps.rules)) return { ignored: 'a review by a bot' };
  if (!review.pull_request.head.ref.startsWith('stagegate/')) return { ignored: 'not a Stagegate branch' };
  const batch: ReviewBatch = {
    repository: review.repository,
    installation: review.installation,
    number: review.pull_request.number,
    reviewer: review.review.user,
    source: { kind: 'review', id: review.review.id, state },
    summary: review.review.body ?? '',
    url: review.review.html_url,
  };
  return { work: 'send the review and its line comments to the coder', run: () => onReviewComments(deps, batch) };
}

/** Pure routing of a `pull_request_review_comment` delivery (not from a fork). */
export function routePullRequestReviewComment(deps: HumanReviewDeps, created: PullRequestReviewCommentCreated): RoutedDelivery {
  const why = whyNotForCoder(created.comment, deps.rules);
  if (why !== undefined) return { ignored: why };
  if (!created.pull_request.head.ref.startsWith('stagegate/')) return { ignored: 'not a Stagegate branch' };
  const reviewId = created.comment.pull_request_review_id;
  const batch: ReviewBatch = {
    repository: created.repository,
    installation: created.installation,
    number: created.pull_request.number,
    reviewer: created.comment.user,
    source: reviewId === null ? { kind: 'comment', id: created.comment.id } : { kind: 'review', id: reviewId },
    summary: '',
    url: created.comment.html_url,
  };
  return { work: 'send the review comment to the coder', run: () => onReviewComments(deps, batch) };
}

const ReviewAsRead = z.object({ state: z.string(), body: z.string().nullable().default(null), html_url: z.string().optional() });

export async function onReviewComments(deps: HumanReviewDeps, delivered: ReviewBatch): Promise<void> {
  const ref = repositoryRefOf(delivered);
  const { owner, repo } = ref;
  const { number } = delivered;
  const login = delivered.reviewer.login;
  const log = deps.log.child({ owner, repo, pullRequest: number, by: `github:${login}`, [delivered.source.kind]: delivered.source.id });
  const octokit = await deps.github.forRepository(ref);
  const batch = await withReviewRead(octokit, delivered);
  if (batch.source.kind === 'review' && !REVIEW_STATES.has(batch.source.state ?? '')) {
    log.info({ state: batch.source.state }, 'comment of a review that is not submitted; ignored');
    return;
  }
  const requestsChanges = batch.source.kind === 'review' && batch.source.state === 'changes_requested';

  const found = await taskForPullRequest(deps.index, octokit, { owner, repo, number });
  if (found.kind !== 'task') {
    log.info({ found: found.kind }, 'review on a pull request with no task; ignored');
    return;
  }
  const { taskId } = found;
  // A review arrives as several deliveries at once: the first to claim the answer gives it.
  const reply = (text: string) =>
    answerOnce(deps, `${taskId}.${batch.source.kind}-${batch.source.id}`, () => octokit.rest.issues.createComment({ owner, repo, issue_number: number, body: `@${login} ${text}` }));
  const msgId = `${taskId}:${batch.source.kind === 'review' ? 'pr-review' : 'pr-comment'}:${batch.source.id}`;
  const by = `github:${login}`;
  const candidates = await batchComments(octokit, deps, { owner, repo, number, taskId, source: batch.source }, log);
  // Comments another delivery already took are that one's; ones this batch took before mean a redelivery.
  const held = await Promise.all(candidates.map(async (t) => ({ ...t, entry: (await deps.threads.load(taskId, t.c.id)).value })));
  const fresh = held.filter(({ entry }) => entry === undefined);
  const ours = held.filter(({ entry }) => entry?.batch === msgId);
  if (ours.length > 0 && ours.every(({ entry }) => entry?.answered !== undefined)) {
    log.info({ taskId, msgId }, 'review already sent to the coder and answered; nothing to do');
    return;
  }
  const redelivery = ours.length > 0;
  const kept = held.filter(({ entry }) => entry?.batch === null).length;
  // All its comments went with another delivery (a one-comment review arrives twice): that one was the round.
  if (fresh.length === 0 && kept === 0 && !redelivery && (candidates.length > 0 || !requestsChanges)) {
    log.info({ taskId, candidates: candidates.length }, 'no review comments left to send to the coder; ignored');
    return;
  }

  const allowListed = isBot(batch.reviewer, undefined) && isAllowListedBot(login, deps.rules);
  const permission = allowListed ? 'allow-listed bot' : await deps.permissions.permissionOf(octokit, { owner, repo }, login);
  if (permission !== 'allow-listed bot' && (permission === 'none' || !hasAtLeast(permission, deps.commandPermission))) {
    log.info({ permission }, 'review by someone below the command permission; not sent to the coder');
    return reply(
      `thanks for the review — Stagegate sends review comments back to its coder only from people with ${deps.commandPermission} permission or more on ${owner}/${repo}, and yours is ${permission}. Nothing changed.`,
    );
  }
  let record: TaskRecord;
  try {
    record = await deps.tasks.get(taskId);
  } catch (err) {
    if (!isStagegateError(err, 'TASK_UNKNOWN')) throw err;
    return reply(`task \`${taskId}\` is still being started; review again in a moment. Nothing changed.`);
  }
  const entryOf = ({ c, earlier }: InThread, batchId: string | null): ThreadEntry => ({
    taskId,
    owner,
    repo,
    pullNumber: number,
    batch: batchId,
    comment: asCoderComment(c, earlier),
    by,
    ...(c.in_reply_to_id == null ? {} : { threadRoot: c.in_reply_to_id }),
  });
  if (!TAKES_REVIEWS.has(record.state) && !redelivery) {
    if (COMES_BACK_TO_A_GATE.has(record.state) && fresh.length === 0 && kept > 0) return;
    if (COMES_BACK_TO_A_GATE.has(record.state) && fresh.length > 0) {
      let keeping = 0;
      for (const t of fresh) if (await deps.threads.claim(t.c.id, entryOf(t, null))) keeping += 1;
      // Taken by a round another delivery of the review started a moment ago.
      if (keeping === 0) return;
      log.info({ state: record.state, kept: keeping }, 'review comments kept for the next round');
      return reply(
        `task \`${taskId}\` is ${record.state}: your ${keeping} line comment${keeping === 1 ? '' : 's'} will go to the coder with the next round, when the task is back at the review or deploy gate.`,
      );
    }
    log.info({ state: record.state }, 'review while the task is not at the review or deploy gate');
    return reply(
      `task \`${taskId}\` is ${record.state}: review comments go back to the coder while the task waits at the review or deploy gate. Review again then (or comment \`/reject <reason>\` at the gate). Nothing changed.`,
    );
  }

  const max = reviewerRoundsOf(deps, record);
  const limitReached = record.context.reviewerRounds.used >= max;
  const sent = ours.map(({ c, earlier }) => asCoderComment(c, earlier));
  // At the limit nothing is taken: the comments stay free for a round a person allows later.
  if (!limitReached) {
    for (const t of fresh) if (await deps.threads.claim(t.c.id, entryOf(t, msgId))) sent.push(asCoderComment(t.c, t.earlier));
    sent.push(...(await takeWaiting(deps.threads, taskId, msgId)));
  }
  await deps.publish(changesRequested(deps, { taskId, msgId, by, summary: batch.summary, comments: sent, url: batch.url, max }));
  // A redelivery answers only if the answer was not posted yet (the claim says so).
  if (redelivery) log.info({ taskId, msgId }, 'review sent to the coder again after a redelivery');
  if (limitReached) {
    const used = record.context.reviewerRounds.used;
    log.info({ taskId, used }, 'review rounds used up; the task waits for a person');
    return reply(
      `reviews of this pull request already started ${used} coder round${used === 1 ? '' : 's'} for task \`${taskId}\` (at most ${max}), so this one does not: a person decides at the gate (\`/approve\`, or \`/reject <what to change>\`).`,
    );
  }
  log.info({ taskId, comments: sent.length }, 'review sent to the coder');
  await reply(`sending task \`${taskId}\` back to the coder with your review (${sent.length} line comment${sent.length === 1 ? '' : 's'}); the status comment follows it.`);
}

/**
 * Comments kept while the coder worked go to it once the task is back at the review or deploy
 * gate: on any applied event that leaves it there, as one round of their own (unless a review
 * arriving at the same moment took them). With the reviewer rounds used up they go nowhere, and
 * their writers are told so once on the pull request.
 */
export async function sendWaitingComments(deps: HumanReviewDeps, entry: TaskEventRecorded): Promise<void> {
  const state = TaskState.safeParse(entry.state);
  if (!entry.accepted || !state.success || !TAKES_REVIEWS.has(state.data)) return;
  const taskId = entry.taskId;
  const waiting = await deps.threads.waiting(taskId);
  const first = waiting[0];
  if (first === undefined) return;
  const record = await deps.tasks.get(taskId);
  if (!TAKES_REVIEWS.has(record.state)) return;
  const max = reviewerRoundsOf(deps, record);
  if (record.context.reviewerRounds.used >= max) return dropAtLimit(deps, taskId, { used: record.context.reviewerRounds.used, max });
  const msgId = `${taskId}:pr-waiting:${first.commentId}`;
  const comments = await takeWaiting(deps.threads, taskId, msgId);
  if (comments.length === 0) return;
  const by = [...new Set(waiting.map((w) => w.entry.by))].join(', ');
  await deps.publish(changesRequested(deps, { taskId, msgId, by, summary: 'line comments written while the coder worked', comments, max }));
  deps.log.info({ taskId, comments: comments.length }, 'review comments kept while the coder worked sent to it');
}

/**
 * Tells the writers of the kept comments on the pull request that they did not go (once: the
 * answer is claimed), then takes the comments out of the waiting ones for good. A failed post
 * leaves them waiting, so the next event tries again.
 */
async function dropAtLimit(deps: HumanReviewDeps, taskId: string, { used, max }: { used: number; max: number }): Promise<void> {
  const waiting = await deps.threads.waiting(taskId);
  const first = waiting[0];
  if (first === undefined) return;
  const { owner, repo, pullNumber } = first.entry;
  const people = [...new Set(waiting.map((w) => w.entry.by))].map((by) => by.replace(/^github:/, '@')).join(', ');
  const n = waiting.length;
  await answerOnce(deps, `${taskId}.kept-past-limit-${first.commentId}`, async () =>
    (await deps.github.forRepository({ owner, repo })).rest.issues.createComment({
      owner,
      repo,
      issue_number: pullNumber,
      body: `${people}: ${n} line comment${n === 1 ? '' : 's'} written while the coder worked did not go to it: reviews of this pull request already started ${used} coder round${used === 1 ? '' : 's'} for task \`${taskId}\` (at most ${max}). A person decides at the gate (\`/approve\`, or \`/reject <what to change>\`).`,
    }),
  );
  for (const stored of waiting) await deps.threads.take(stored, `${taskId}:pr-kept-past-limit`);
  deps.log.info({ taskId, comments: waiting.length }, 'review comments kept while the coder worked dropped: the reviewer rounds are used up');
}

async function takeWaiting(threads: ThreadStore, taskId: string, batch: string): Promise<CoderReviewComment[]> {
  const taken: CoderReviewComment[] = [];
  for (const stored of await threads.waiting(taskId)) if (await threads.take(stored, batch)) taken.push(stored.entry.comment);
  return taken;
}

/** Posts an answer on the pull request unless one with this key was posted; a failed post frees the key for the retry. */
async function answerOnce(deps: Pick<HumanReviewDeps, 'answers'>, key: string, post: () => Promise<unknown>): Promise<void> {
  const claimed = `review-answer.${key}`;
  if (!(await deps.answers.claim(claimed, 'review answer'))) return;
  try {
    await post();
  } catch (err) {
    await deps.answers.release(claimed);
    throw err;
  }
}

/** The task's own limit (from its repository's settings), else serve's. */
function reviewerRoundsOf(deps: Pick<HumanReviewDeps, 'maxReviewerRounds'>, record: TaskRecord): number {
  return record.context.maxReviewerRounds ?? deps.maxReviewerRounds;
}

function changesRequested(
  deps: Pick<HumanReviewDeps, 'now'>,
  round: { taskId: string; msgId: string; by: string; summary: string; comments: CoderReviewComment[]; url?: string | undefined; max: number },
): HumanChangesRequested {
  return {
    type: 'review.human_changes_requested',
    taskId: round.taskId,
    msgId: round.msgId,
    sentAt: deps.now().toISOString(),
    by: round.by,
    summary: round.summary,
    comments: round.comments,
    maxReviewerRounds: round.max,
    ...(round.url === undefined ? {} : { url: round.url }),
  };
}


/** A comment's delivery names its review but not the review's state or text: those are read from GitHub. */
async function withReviewRead(octokit: GitHubOctokit, batch: ReviewBatch): Promise<ReviewBatch> {
  const { source } = batch;
  if (source.kind !== 'review' || source.state !== undefined) return batch;
  const { owner, repo } = repositoryRefOf(batch);
  const { data } = await octokit.rest.pulls.getReview({ owner, repo, pull_number: batch.number, review_id: source.id });
  const review = parseAt(ReviewAsRead, data, `GitHub review ${source.id} of ${owner}/${repo}#${batch.number}`);
  return { ...batch, source: { ...source, state: review.state.toLowerCase() }, summary: review.body ?? '', url: review.html_url ?? batch.url };
}

/** A review comment with the comments before it in its thread (none for a thread's first). */
interface InThread {
  c: GitHubReviewComment;
  earlier: GitHubReviewComment[];
}

/** The batch's review comments that go to the coder: its review's, or the one comment. */
async function batchComments(
  octokit: GitHubOctokit,
  deps: Pick<HumanReviewDeps, 'rules' | 'threads'>,
  where: { owner: string; repo: string; number: number; taskId: string; source: ReviewBatch['source'] },
  log: Logger,
): Promise<InThread[]> {
  const { owner, repo, number, source } = where;
  const all = await listAll(
    octokit.paginate.iterator(octokit.rest.pulls.listReviewComments, { owner, repo, pull_number: number, per_page: 100 }),
    `review comments of ${owner}/${repo}#${number}`,
  );
  const comments = parseAt(z.array(GitHubReviewComment), all, `GitHub review comments of ${owner}/${repo}#${number}`, where.taskId);
  const inBatch = comments.filter((c) => (source.kind === 'review' ? c.pull_request_review_id === source.id : c.id === source.id));
  const taken: InThread[] = [];
  for (const c of inBatch) {
    // GitHub's replies all name the thread's first comment; ids grow with time.
    const root = c.in_reply_to_id;
    const earlier = root == null ? [] : comments.filter((o) => o.id < c.id && (o.id === root || o.in_reply_to_id === root)).sort((a, b) => a.id - b.id);
    const why = whyNotForCoder(c, deps.rules, root == null ? undefined : { earlier, lastAnswer: await lastAnswerIn(deps.threads, where.taskId, earlier) });
    if (why === undefined) taken.push({ c, earlier });
    else log.debug({ comment: c.id, why }, 'review comment not for the coder');
  }
  return taken;
}

/** Stagegate's latest answer to any comment of the thread so far. */
async function lastAnswerIn(threads: ThreadStore, taskId: string, earlier: readonly GitHubReviewComment[]): Promise<'addressed' | 'declined' | undefined> {
  let last: { status: 'addressed' | 'declined'; at: string } | undefined;
  for (const c of earlier) {
    const answered = (await threads.load(taskId, c.id)).value?.answered;
    if (answered !== undefined && (last === undefined || answered.at > last.at)) last = answered;
  }
  return last?.status;
}
