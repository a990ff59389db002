/**
 * What GitHub sends the webhook route: GitHub's own example payloads from
 * `@octokit/webhooks-examples`, with the repository, issue, label and people changed to the
 * test's, checked by the production schemas (so a stale example fails), and signed as GitHub
 * signs: `sha256=` + HMAC-SHA256 of the exact body with the webhook secret.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { PushDelivery } from '../../orchestrator/github/base-watch.js';
import { PullRequestSynchronize } from '../../orchestrator/github/branch-moves.js';
import { CheckEvent } from '../../orchestrator/github/ci-watch.js';
import { PullRequestReviewCommentCreated, PullRequestReviewSubmitted } from '../../orchestrator/github/human-review.js';
import { IssueCommentCreated, IssuesLabeled, PullRequestOpened } from '../../orchestrator/github/payloads.js';

type Json = Record<string, unknown>;

const Definitions = z.array(z.object({ name: z.string(), examples: z.array(z.record(z.string(), z.unknown())) }));
const definitions = Definitions.parse(createRequire(import.meta.url)('@octokit/webhooks-examples'));

/** A deep copy of GitHub's first example of `event` with that `action` (and, optionally, more). */
export function exampleOf(event: string, action: string | undefined, where: (payload: Json) => boolean = () => true): Json {
  const found = definitions.find((d) => d.name === event)?.examples.find((p) => p.action === action && where(p));
  if (found === undefined) throw new Error(`@octokit/webhooks-examples has no ${event}${action === undefined ? '' : `.${action}`} example`);
  return structuredClone(found);
}

export interface RepoOf {
  owner: string;
  repo: string;
  defaultBranch?: string;
  installationId?: number;
}

function withRepository(payload: Json, where: RepoOf): Json {
  const repository = payload.repository as Json;
  payload.repository = {
    ...repository,
    name: where.repo,
    full_name: `${where.owner}/${where.repo}`,
    owner: { ...(repository.owner as Json), login: where.owner },
    default_branch: where.defaultBranch ?? 'main',
  };
  if (where.installationId === undefined) delete payload.installation;
  else payload.installation = { id: where.installationId, node_id: 'MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==' };
  return payload;
}

const person = (login: string, type = login.endsWith('[bot]') ? 'Bot' : 'User') => ({ login, type, id: 4242, node_id: 'U_test', site_admin: false });

export function issueLabeled(options: RepoOf & { number: number; label: string; sender: string; title?: string; body?: string | null; pullRequest?: boolean }): Json {
  const payload = withRepository(exampleOf('issues', 'labeled', (p) => 'organization' in p), options);
  const issue = payload.issue as Json;
  payload.issue = {
    ...issue,
    number: options.number,
    title: options.title ?? issue.title,
    body: options.body === undefined ? issue.body : options.body,
    ...(options.pullRequest === true ? { pull_request: { url: `https://api.github.com/repos/${options.owner}/${options.repo}/pulls/${options.number}` } } : {}),
  };
  payload.label = { ...(payload.label as Json), name: options.label };
  payload.sender = person(options.sender);
  IssuesLabeled.parse(payload);
  return payload;
}

export function issueCommentCreated(options: RepoOf & { number: number; body: string; user: string; userType?: string; onPullRequest?: boolean; createdAt?: Date }): Json {
  const payload = withRepository(exampleOf('issue_comment', 'created'), options);
  const issue = payload.issue as Json;
  payload.issue = {
    ...issue,
    number: options.number,
    ...(options.onPullRequest === true ? { pull_request: { url: `https://api.github.com/repos/${options.owner}/${options.repo}/pulls/${options.number}` } } : {}),
  };
  const createdAt = (options.createdAt ?? new Date()).toISOString();
  payload.comment = {
    ...(payload.comment as Json),
    id: 900_000 + Math.floor(Math.random() * 99_999),
    body: options.body,
    user: person(options.user, options.userType),
    created_at: createdAt,
    updated_at: createdAt,
  };
  payload.sender = person(options.user, options.userType);
  IssueCommentCreated.parse(payload);
  return payload;
}

/** A pull request's `head` with branch `ref`, in a fork (`owner/repo`, another repository id) when one is named. */
function headOf(pr: Json, ref: string, fork: string | undefined): Json {
  const head = pr.head as Json;
  if (fork === undefined) return { ...head, ref };
  const [owner = '', name = ''] = fork.split('/');
  const repo = head.repo as Json;
  return { ...head, ref, label: `${owner}:${ref}`, repo: { ...repo, id: 990_000_001, name, full_name: fork, owner: { ...(repo.owner as Json), login: owner } } };
}

export function pullRequestOpened(options: RepoOf & { number: number; head: string; fork?: string }): Json {
  const payload = withRepository(exampleOf('pull_request', 'opened'), options);
  const pr = payload.pull_request as Json;
  payload.number = options.number;
  payload.pull_request = {
    ...pr,
    number: options.number,
    html_url: `https://github.com/${options.owner}/${options.repo}/pull/${options.number}`,
    head: headOf(pr, options.head, options.fork),
  };
  PullRequestOpened.parse(payload);
  return payload;
}

/** A push of `branch` from `before` to `after` (GitHub's `push` event), by `sender`. */
export function pushed(options: RepoOf & { branch: string; before: string; after: string; sender: string }): Json {
  const payload = withRepository(exampleOf('push', undefined), options);
  Object.assign(payload, { ref: `refs/heads/${options.branch}`, before: options.before, after: options.after, sender: person(options.sender) });
  PushDelivery.parse(payload);
  return payload;
}

/** A push to the pull request's branch, from `before` to `after`, by `sender`. */
export function pullRequestSynchronize(options: RepoOf & { number: number; head: string; before: string; after: string; sender: string; fork?: string }): Json {
  const payload = withRepository(exampleOf('pull_request', 'synchronize'), options);
  const pr = payload.pull_request as Json;
  Object.assign(payload, {
    number: options.number,
    before: options.before,
    after: options.after,
    pull_request: { ...pr, number: options.number, html_url: `https://github.com/${options.owner}/${options.repo}/pull/${options.number}`, head: { ...headOf(pr, options.head, options.fork), sha: options.after } },
    sender: person(options.sender),
  });
  PullRequestSynchronize.parse(payload);
  return payload;
}

export function pullRequestReviewSubmitted(options: RepoOf & { number: number; head: string; fork?: string; review: { id: number; state: string; user: string; body?: string } }): Json {
  const payload = withRepository(exampleOf('pull_request_review', 'submitted'), options);
  const pr = payload.pull_request as Json;
  const { review } = options;
  Object.assign(payload, {
    review: { ...(payload.review as Json), id: review.id, state: review.state, body: review.body ?? null, user: person(review.user) },
    pull_request: { ...pr, number: options.number, html_url: `https://github.com/${options.owner}/${options.repo}/pull/${options.number}`, head: headOf(pr, options.head, options.fork) },
    sender: person(review.user),
  });
  PullRequestReviewSubmitted.parse(payload);
  return payload;
}

/** One review comment on the pull request, as GitHub announces each (those of a submitted review too). */
export function pullRequestReviewCommentCreated(
  options: RepoOf & { number: number; head: string; comment: { id: number; reviewId: number; user: string; body: string; path: string; line: number | null; inReplyTo?: number } },
): Json {
  const payload = withRepository(exampleOf('pull_request_review_comment', 'created'), options);
  const pr = payload.pull_request as Json;
  const { comment } = options;
  Object.assign(payload, {
    comment: {
      ...(payload.comment as Json),
      id: comment.id,
      pull_request_review_id: comment.reviewId,
      body: comment.body,
      path: comment.path,
      line: comment.line,
      original_line: comment.line,
      user: person(comment.user),
      ...(comment.inReplyTo === undefined ? {} : { in_reply_to_id: comment.inReplyTo }),
    },
    pull_request: { ...pr, number: options.number, html_url: `https://github.com/${options.owner}/${options.repo}/pull/${options.number}`, head: headOf(pr, options.head, undefined) },
    sender: person(comment.user),
  });
  PullRequestReviewCommentCreated.parse(payload);
  return payload;
}

export function sign(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface Delivery {
  id: string;
  headers: Record<string, string>;
  body: string;
}

/** A delivery as GitHub posts it; `signature: null` leaves the signature header out. */
export function delivery(event: string, payload: unknown, secret: string, options: { id?: string; signature?: string | null } = {}): Delivery {
  const body = JSON.stringify(payload);
  const id = options.id ?? randomUUID();
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'GitHub-Hookshot/test',
    'x-github-event': event,
    'x-github-delivery': id,
    'x-github-hook-id': '1',
  };
  const signature = options.signature === undefined ? sign(body, secret) : options.signature;
  if (signature !== null) headers['x-hub-signature-256'] = signature;
  return { id, headers, body };
}

export async function post(url: string, d: Delivery): Promise<{ status: number; json: Json }> {
  const res = await fetch(url, { method: 'POST', headers: d.headers, body: d.body });
  const text = await res.text();
  return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Json) };
}

/** A check run on `branch` at `sha` finished with `conclusion`. */
/** A `check_suite` or `workflow_run` that finished on `sha` of `branch`. */
export function suiteCompleted(event: 'check_suite' | 'workflow_run', options: RepoOf & { branch: string; sha: string; conclusion: string }): Json {
  const payload = withRepository(exampleOf(event, 'completed'), options);
  payload[event] = { ...(payload[event] as Json), head_branch: options.branch, head_sha: options.sha, status: 'completed', conclusion: options.conclusion };
  CheckEvent.parse(payload);
  return payload;
}

/** A commit status (`status`) set on `sha`, which GitHub says is the head of `branches`. */
export function commitStatus(options: RepoOf & { sha: string; branches: string[]; context: string; state: string; description?: string }): Json {
  const payload = withRepository(exampleOf('status', undefined), options);
  Object.assign(payload, {
    sha: options.sha,
    context: options.context,
    state: options.state,
    description: options.description ?? null,
    branches: options.branches.map((name) => ({ name, commit: { sha: options.sha, url: '' }, protected: false })),
  });
  CheckEvent.parse(payload);
  return payload;
}

export function checkRunCompleted(options: RepoOf & { branch: string; sha: string; name: string; conclusion: string }): Json {
  const payload = withRepository(exampleOf('check_run', 'completed'), options);
  const run = payload.check_run as Json;
  payload.check_run = {
    ...run,
    name: options.name,
    head_sha: options.sha,
    status: 'completed',
    conclusion: options.conclusion,
    check_suite: { ...(run.check_suite as Json), head_branch: options.branch, head_sha: options.sha },
  };
  CheckEvent.parse(payload);
  return payload;
}
