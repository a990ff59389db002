/**
 * After the coder's push (an applied `code.committed` carrying answers), serve replies in each
 * review comment's thread: "Addressed in <commit>" or "Not changed: <reason>", and resolves the
 * threads it addressed (GraphQL `resolveReviewThread`); declined threads stay open for the
 * person. Only comments serve itself sent to this task's coder are answered (the thread store
 * says so), whatever ids the answers name.
 *
 * Safe to repeat: a comment whose entry records its reply is skipped; otherwise the thread is
 * looked at before the reply is posted (a reply carrying our marker for that comment means a
 * crash came between posting and recording), and resolving a resolved thread changes nothing.
 * The entry is written after the reply, so a crash can never lose a reply, only repeat the look.
 */
import { z } from 'zod';
import type { CodeCommitted, ReviewAnswer, TaskEventRecorded } from '../../core/bus/messages.js';
import { WriteConflict } from '../../core/bus/versioned-kv.js';
import { gitHubStatusOf, listAll, type GitHubOctokit } from '../../core/github/client.js';
import type { Logger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import type { RepositoryClients } from './payloads.js';
import { GitHubReviewComment } from './review-comment-rules.js';
import { answeredBy, threadReplyMarker } from './thread-reply-marker.js';
import type { ThreadEntry, ThreadStore } from './thread-store.js';

export interface ThreadReplyDeps {
  threads: ThreadStore;
  github: RepositoryClients;
  log: Logger;
  now(): Date;
}

/** The longest reason quoted from the coder in a thread. */
const REASON_KEPT = 1_000;

/** The reply's text: pure. */
export function threadReplyBody(answer: ReviewAnswer, commit: string): string {
  const reason = answer.reason.trim().replace(/\s+/g, ' ').slice(0, REASON_KEPT);
  const text =
    answer.status === 'addressed'
      ? `Addressed in ${commit}${reason === '' ? '.' : `: ${reason}`}`
      : `Not changed: ${reason === '' ? 'the coder gave no reason' : reason}`;
  return `${threadReplyMarker(answer.commentId)}\n${text}`;
}

export async function answerReviewThreads(deps: ThreadReplyDeps, entry: TaskEventRecorded): Promise<void> {
  const event = entry.event;
  if (!entry.accepted || event.type !== 'code.committed' || event.answers === undefined || event.answers.length === 0) return;
  const log = deps.log.child({ taskId: entry.taskId, commit: event.commit });
  const due: Array<{ answer: ReviewAnswer; thread: ThreadEntry; revision: number }> = [];
  for (const answer of event.answers) {
    const held = await deps.threads.load(entry.taskId, answer.commentId);
    if (held.value === undefined || held.revision === undefined || held.value.batch === null) {
      log.warn({ comment: answer.commentId }, 'answer for a review comment this task was not sent; no reply');
      continue;
    }
    if (held.value.answered !== undefined) continue;
    due.push({ answer, thread: held.value, revision: held.revision });
  }
  const byPull = new Map<string, typeof due>();
  for (const d of due) {
    const key = `${d.thread.owner}/${d.thread.repo}#${d.thread.pullNumber}`;
    byPull.set(key, [...(byPull.get(key) ?? []), d]);
  }
  for (const answers of byPull.values()) await answerOnPull(deps, event, answers, log);
}

async function answerOnPull(
  deps: ThreadReplyDeps,
  event: CodeCommitted,
  due: Array<{ answer: ReviewAnswer; thread: ThreadEntry; revision: number }>,
  log: Logger,
): Promise<void> {
  const first = due[0];
  if (first === undefined) return;
  const { owner, repo, pullNumber } = first.thread;
  const octokit = await deps.github.forRepository({ owner, repo });
  const replied = await repliedComments(octokit, { owner, repo, pullNumber, taskId: event.taskId });
  let threads: Map<number, { id: string; isResolved: boolean }> | undefined;
  for (const { answer, thread, revision } of due) {
    // GitHub takes replies to a thread's first comment only: a reply's answer goes there too.
    const root = thread.threadRoot ?? answer.commentId;
    if (!replied.has(answer.commentId) && !(await postReply(octokit, { owner, repo, pullNumber, root }, answer, event.commit))) {
      log.warn({ comment: answer.commentId }, 'review comment gone (deleted, or its pull request); no reply');
    } else if (answer.status === 'addressed') {
      threads ??= await reviewThreads(octokit, { owner, repo, pullNumber, taskId: event.taskId });
      const found = threads.get(root);
      if (found === undefined) log.warn({ comment: answer.commentId }, 'no review thread found for an addressed comment; left open');
      else if (!found.isResolved) await resolveThread(octokit, found.id);
    }
    try {
      await deps.threads.save(answer.commentId, { ...thread, answered: { status: answer.status, commit: event.commit, at: deps.now().toISOString() } }, { revision });
    } catch (err) {
      // Another serve answered it at the same time: its reply is the one the marker finds.
      if (!(err instanceof WriteConflict)) throw err;
    }
    log.info({ comment: answer.commentId, status: answer.status }, 'review thread answered');
  }
}

/** False when GitHub no longer has the comment: retrying would not bring it back. */
async function postReply(octokit: GitHubOctokit, where: { owner: string; repo: string; pullNumber: number; root: number }, answer: ReviewAnswer, commit: string): Promise<boolean> {
  try {
    await octokit.rest.pulls.createReplyForReviewComment({ owner: where.owner, repo: where.repo, pull_number: where.pullNumber, comment_id: where.root, body: threadReplyBody(answer, commit) });
    return true;
  } catch (err) {
    if (gitHubStatusOf(err) === 404) return false;
    throw err;
  }
}

/** Comments of the pull request already answered by a reply carrying our marker. */
async function repliedComments(octokit: GitHubOctokit, where: { owner: string; repo: string; pullNumber: number; taskId: string }): Promise<Set<number>> {
  const { owner, repo, pullNumber } = where;
  const all = await listAll(
    octokit.paginate.iterator(octokit.rest.pulls.listReviewComments, { owner, repo, pull_number: pullNumber, per_page: 100 }),
    `review comments of ${owner}/${repo}#${pullNumber}`,
  );
  const comments = parseAt(z.array(GitHubReviewComment), all, `GitHub review comments of ${owner}/${repo}#${pullNumber}`, where.taskId);
  const replied = new Set<number>();
  for (const c of comments) {
    const answered = answeredBy(c.body);
    if (answered !== undefined) replied.add(answered);
  }
  return replied;
}

const THREADS_QUERY = `query($owner: String!, $repo: String!, $number: Int!, $cursor: String) {
  repository(owner: $owner, name: $repo) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $cursor) {
        nodes { id isResolved comments(first: 1) { nodes { databaseId } } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}`;

const ThreadsReply = z.object({
  repository: z.object({
    pullRequest: z.object({
      reviewThreads: z.object({
        nodes: z.array(z.object({ id: z.string(), isResolved: z.boolean(), comments: z.object({ nodes: z.array(z.object({ databaseId: z.number().int().nullable() })) }) })),
        pageInfo: z.object({ hasNextPage: z.boolean(), endCursor: z.string().nullable() }),
      }),
    }).nullable(),
  }).nullable(),
});

/** The pull request's review threads by the database id of the comment that started each. */
async function reviewThreads(octokit: GitHubOctokit, where: { owner: string; repo: string; pullNumber: number; taskId: string }): Promise<Map<number, { id: string; isResolved: boolean }>> {
  const threads = new Map<number, { id: string; isResolved: boolean }>();
  let cursor: string | null = null;
  for (let page = 0; page < 50; page++) {
    const data: unknown = await octokit.graphql(THREADS_QUERY, { owner: where.owner, repo: where.repo, number: where.pullNumber, cursor });
    const reply = parseAt(ThreadsReply, data, `GitHub review threads of ${where.owner}/${where.repo}#${where.pullNumber}`, where.taskId);
    const connection = reply.repository?.pullRequest?.reviewThreads;
    if (connection === undefined) break;
    for (const node of connection.nodes) {
      const firstId = node.comments.nodes[0]?.databaseId;
      if (firstId != null) threads.set(firstId, { id: node.id, isResolved: node.isResolved });
    }
    if (!connection.pageInfo.hasNextPage) break;
    cursor = connection.pageInfo.endCursor;
  }
  return threads;
}

const RESOLVE_MUTATION = `mutation($threadId: ID!) {
  resolveReviewThread(input: { threadId: $threadId }) { thread { id isResolved } }
}`;

async function resolveThread(octokit: GitHubOctokit, threadId: string): Promise<void> {
  await octokit.graphql(RESOLVE_MUTATION, { threadId });
}
