/**
 * Pull requests on the real bare repository: the head's sha, mergeability and diff stats are
 * read from git on every request; a merge writes a real commit to the base branch (merge commit,
 * squash or rebase) and moves it compare-and-set. Reviews (with line comments checked against the
 * diff, as GitHub checks them) and review comments are kept in state.
 */
import { z } from 'zod';
import {
  branchSha,
  changedFiles,
  commitCount,
  commitInfo,
  commitTree,
  commitsBetween,
  diffLines,
  isAncestor,
  mergeTree,
  updateBranch,
} from './bare-repo.js';
import { addIssue } from './issues.js';
import { authorAssociation, issue as issueShape, nodeId, repoHtml, repoUrl, repository, userOf, type RepositoryShape, type Schemas } from './shapes.js';
import {
  HttpError,
  DOCS,
  callerLogin,
  intParam,
  json,
  needs,
  noContent,
  notFound,
  page,
  parseBody,
  route,
  unprocessable,
  validationFailed,
  type Route,
  type RouteContext,
} from './routes.js';
import type { FakeIssue, FakePull, FakeRepo, FakeReview, FakeReviewComment } from './state.js';

type OpenPull = FakeIssue & { pull: FakePull };

type PullBranch = { label: string; ref: string; sha: string; user: Schemas['simple-user']; repo: RepositoryShape };
export type PullShape = Pick<
  Schemas['pull-request'],
  | 'url'
  | 'id'
  | 'node_id'
  | 'html_url'
  | 'diff_url'
  | 'patch_url'
  | 'issue_url'
  | 'number'
  | 'state'
  | 'locked'
  | 'title'
  | 'user'
  | 'body'
  | 'labels'
  | 'created_at'
  | 'updated_at'
  | 'closed_at'
  | 'merged_at'
  | 'merge_commit_sha'
  | 'draft'
  | 'merged'
  | 'mergeable'
  | 'mergeable_state'
  | 'merged_by'
  | 'comments'
  | 'review_comments'
  | 'commits'
  | 'additions'
  | 'deletions'
  | 'changed_files'
  | 'maintainer_can_modify'
  | 'author_association'
> & { head: PullBranch; base: PullBranch };

function findPull(ctx: RouteContext): OpenPull {
  const found = ctx.state.pull(ctx.repo, intParam(ctx, 'pull_number'));
  if (found === undefined) throw notFound();
  return found;
}

/** Serialises merges per repository, so two merges never race on the base branch. */
const locks = new WeakMap<FakeRepo, Promise<unknown>>();
function withRepoLock<T>(repo: FakeRepo, fn: () => Promise<T>): Promise<T> {
  const run = (locks.get(repo) ?? Promise.resolve()).then(fn, fn);
  locks.set(
    repo,
    run.catch(() => undefined),
  );
  return run;
}

/** The head's sha now (or the last one seen, once the branch is gone). */
async function headShaOf(repo: FakeRepo, pr: OpenPull): Promise<string> {
  if (pr.pull.headRepo !== undefined) return pr.pull.lastHeadSha;
  const sha = await branchSha(repo.dir, pr.pull.head);
  if (sha !== undefined) pr.pull.lastHeadSha = sha;
  return pr.pull.lastHeadSha;
}

export async function pullShape(ctx: RouteContext, pr: OpenPull): Promise<PullShape> {
  const { repo, state, urls } = ctx;
  const headSha = await headShaOf(repo, pr);
  const baseSha = (await branchSha(repo.dir, pr.pull.base)) ?? headSha;
  const files = await changedFiles(repo.dir, baseSha, headSha);
  let mergeable: boolean | null = null;
  let mergeableState = 'unknown';
  if (pr.state === 'open' && (repo.mergeabilityPendingReads ?? 0) > 0) {
    repo.mergeabilityPendingReads = (repo.mergeabilityPendingReads ?? 0) - 1;
  } else if (pr.state === 'open') {
    mergeable = (await mergeTree(repo.dir, baseSha, headSha)) !== undefined;
    const behind = repo.requireUpToDate === true && !(await isAncestor(repo.dir, baseSha, headSha));
    mergeableState = !mergeable ? 'dirty' : behind ? 'behind' : pr.pull.draft ? 'draft' : hasFailingChecks(repo, headSha) ? 'unstable' : 'clean';
  }
  const base = issueShape(state, urls, repo, pr);
  const branch = (ref: string, sha: string, where: FakeRepo = repo): PullBranch => ({
    label: `${where.owner}:${ref}`,
    ref,
    sha,
    user: userOf(state, urls, where.owner),
    repo: repository(state, urls, where),
  });
  const headRepo = pr.pull.headRepo === undefined ? repo : state.repo(pr.pull.headRepo.owner, pr.pull.headRepo.name);
  if (headRepo === undefined) throw new Error(`fake GitHub: the head repository of #${pr.number} is gone`);
  return {
    url: `${repoUrl(urls, repo)}/pulls/${pr.number}`,
    id: pr.id,
    node_id: nodeId('PullRequest', pr.id),
    html_url: `${repoHtml(urls, repo)}/pull/${pr.number}`,
    diff_url: `${repoHtml(urls, repo)}/pull/${pr.number}.diff`,
    patch_url: `${repoHtml(urls, repo)}/pull/${pr.number}.patch`,
    issue_url: base.url,
    number: pr.number,
    state: pr.state,
    locked: false,
    title: pr.title,
    user: userOf(state, urls, pr.user),
    body: pr.body,
    labels: base.labels.flatMap((l) => (typeof l === 'string' ? [] : [{ id: l.id ?? 0, node_id: l.node_id ?? '', url: l.url ?? '', name: l.name ?? '', description: l.description ?? null, color: l.color ?? '', default: false }])),
    created_at: pr.createdAt,
    updated_at: pr.updatedAt,
    closed_at: pr.closedAt,
    merged_at: pr.pull.mergedAt,
    merge_commit_sha: pr.pull.mergeCommitSha,
    head: branch(pr.pull.head, headSha, headRepo),
    base: branch(pr.pull.base, baseSha),
    draft: pr.pull.draft,
    merged: pr.pull.merged,
    mergeable,
    mergeable_state: mergeableState,
    merged_by: pr.pull.mergedBy === null ? null : userOf(state, urls, pr.pull.mergedBy),
    comments: base.comments,
    review_comments: repo.reviewComments.filter((c) => c.pullNumber === pr.number).length,
    commits: await commitCount(repo.dir, baseSha, headSha),
    additions: files.reduce((n, f) => n + f.additions, 0),
    deletions: files.reduce((n, f) => n + f.deletions, 0),
    changed_files: files.length,
    maintainer_can_modify: false,
    author_association: authorAssociation(state, repo, pr.user),
  };
}

function hasFailingChecks(repo: FakeRepo, sha: string): boolean {
  const failed = new Set(['failure', 'timed_out', 'cancelled', 'action_required']);
  return (
    repo.checkRuns.some((r) => r.headSha === sha && r.conclusion !== null && failed.has(r.conclusion)) ||
    repo.statuses.some((s) => s.sha === sha && (s.state === 'failure' || s.state === 'error'))
  );
}

function reviewShape(ctx: RouteContext, pr: OpenPull, r: FakeReview): Schemas['pull-request-review'] {
  const html = `${repoHtml(ctx.urls, ctx.repo)}/pull/${pr.number}#pullrequestreview-${r.id}`;
  const pullUrl = `${repoUrl(ctx.urls, ctx.repo)}/pulls/${pr.number}`;
  return {
    id: r.id,
    node_id: nodeId('PullRequestReview', r.id),
    user: userOf(ctx.state, ctx.urls, r.user),
    body: r.body,
    state: r.state,
    html_url: html,
    pull_request_url: pullUrl,
    _links: { html: { href: html }, pull_request: { href: pullUrl } },
    submitted_at: r.submittedAt,
    commit_id: r.commitId,
    author_association: authorAssociation(ctx.state, ctx.repo, r.user),
  };
}

export function reviewCommentShape(ctx: RouteContext, c: FakeReviewComment): Schemas['pull-request-review-comment'] {
  const url = `${repoUrl(ctx.urls, ctx.repo)}/pulls/comments/${c.id}`;
  const html = `${repoHtml(ctx.urls, ctx.repo)}/pull/${c.pullNumber}#discussion_r${c.id}`;
  const pullUrl = `${repoUrl(ctx.urls, ctx.repo)}/pulls/${c.pullNumber}`;
  return {
    url,
    pull_request_review_id: c.reviewId,
    id: c.id,
    node_id: nodeId('PullRequestReviewComment', c.id),
    diff_hunk: '',
    path: c.path,
    commit_id: c.commitId,
    original_commit_id: c.commitId,
    user: userOf(ctx.state, ctx.urls, c.user),
    body: c.body,
    created_at: c.createdAt,
    updated_at: c.createdAt,
    html_url: html,
    pull_request_url: pullUrl,
    author_association: authorAssociation(ctx.state, ctx.repo, c.user),
    _links: { self: { href: url }, html: { href: html }, pull_request: { href: pullUrl } },
    start_line: c.startLine,
    line: c.line ?? undefined,
    side: c.side,
    subject_type: c.line === null ? 'file' : 'line',
    ...(c.inReplyTo === undefined ? {} : { in_reply_to_id: c.inReplyTo }),
  };
}

const CreatePull = z.object({
  title: z.string().min(1),
  head: z.string().min(1),
  base: z.string().min(1),
  body: z.string().nullish(),
  draft: z.boolean().optional(),
  maintainer_can_modify: z.boolean().optional(),
});
const UpdatePull = z.object({
  title: z.string().min(1).optional(),
  body: z.string().nullish(),
  state: z.enum(['open', 'closed']).optional(),
  base: z.string().min(1).optional(),
});
const MergePull = z.object({
  commit_title: z.string().optional(),
  commit_message: z.string().optional(),
  sha: z.string().optional(),
  merge_method: z.enum(['merge', 'squash', 'rebase']).default('merge'),
});
const CreateReview = z.object({
  commit_id: z.string().optional(),
  body: z.string().optional(),
  event: z.enum(['APPROVE', 'REQUEST_CHANGES', 'COMMENT']).optional(),
  comments: z
    .array(
      z.object({
        path: z.string().min(1),
        body: z.string().min(1),
        line: z.number().int().positive().optional(),
        side: z.enum(['LEFT', 'RIGHT']).optional(),
        start_line: z.number().int().positive().optional(),
        start_side: z.enum(['LEFT', 'RIGHT']).optional(),
        position: z.number().int().positive().optional(),
      }),
    )
    .default([]),
});

const notMergeable = (message = 'Pull Request is not mergeable') => new HttpError(405, { message, documentation_url: DOCS, status: '405' });

export const pullRoutes: Route[] = [
  route('POST', '/repos/{owner}/{repo}/pulls', needs('write', 'pull_requests'), async (ctx) => {
    const body = parseBody(CreatePull, ctx.body);
    const head = body.head.includes(':') ? body.head.slice(body.head.indexOf(':') + 1) : body.head;
    const baseSha = await branchSha(ctx.repo.dir, body.base);
    if (baseSha === undefined) throw validationFailed({ resource: 'PullRequest', field: 'base', code: 'invalid' });
    const headSha = await branchSha(ctx.repo.dir, head);
    if (headSha === undefined) throw validationFailed({ resource: 'PullRequest', field: 'head', code: 'invalid' });
    const open = [...ctx.repo.issues.values()].find((i) => i.state === 'open' && i.pull?.head === head && i.pull.base === body.base);
    if (open !== undefined) {
      throw validationFailed({ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${ctx.repo.owner}:${head}.` });
    }
    if ((await commitCount(ctx.repo.dir, baseSha, headSha)) === 0) {
      throw validationFailed({ resource: 'PullRequest', code: 'custom', message: `No commits between ${body.base} and ${head}` });
    }
    const created = addIssue(ctx, ctx.repo, {
      title: body.title,
      body: body.body ?? null,
      user: callerLogin(ctx),
      pull: { head, base: body.base, draft: body.draft ?? false, merged: false, mergedAt: null, mergedBy: null, mergeCommitSha: null, lastHeadSha: headSha },
    });
    return json(await pullShape(ctx, created as OpenPull), 201);
  }),
  route('GET', '/repos/{owner}/{repo}/pulls', needs('read', 'pull_requests'), async (ctx) => {
    const wanted = ctx.query.get('state') ?? 'open';
    const head = ctx.query.get('head');
    const base = ctx.query.get('base');
    const pulls = [...ctx.repo.issues.values()]
      .filter((i): i is OpenPull => i.pull !== undefined)
      .filter((i) => wanted === 'all' || i.state === wanted)
      .filter((i) => head === null || `${i.pull.headRepo?.owner ?? ctx.repo.owner}:${i.pull.head}`.toLowerCase() === head.toLowerCase() || (!head.includes(':') && i.pull.head === head))
      .filter((i) => base === null || i.pull.base === base)
      .sort((a, b) => b.number - a.number);
    const shapes = [];
    for (const pr of pulls) shapes.push(await pullShape(ctx, pr));
    return page(ctx, shapes);
  }),
  route('GET', '/repos/{owner}/{repo}/pulls/{pull_number}', needs('read', 'pull_requests'), async (ctx) => json(await pullShape(ctx, findPull(ctx)))),
  route('PATCH', '/repos/{owner}/{repo}/pulls/{pull_number}', needs('write', 'pull_requests'), async (ctx) => {
    const pr = findPull(ctx);
    const body = parseBody(UpdatePull, ctx.body);
    if (body.title !== undefined) pr.title = body.title;
    if (body.body !== undefined) pr.body = body.body;
    if (body.base !== undefined) {
      if ((await branchSha(ctx.repo.dir, body.base)) === undefined) throw validationFailed({ resource: 'PullRequest', field: 'base', code: 'invalid' });
      pr.pull.base = body.base;
    }
    if (body.state !== undefined && !pr.pull.merged && body.state !== pr.state) {
      pr.state = body.state;
      pr.closedAt = body.state === 'closed' ? ctx.state.now() : null;
    }
    pr.updatedAt = ctx.state.now();
    return json(await pullShape(ctx, pr));
  }),
  route('GET', '/repos/{owner}/{repo}/pulls/{pull_number}/merge', needs('read', 'pull_requests'), (ctx) => {
    if (!findPull(ctx).pull.merged) throw notFound();
    return noContent();
  }),
  route('PUT', '/repos/{owner}/{repo}/pulls/{pull_number}/merge', needs('write', 'contents'), (ctx) =>
    withRepoLock(ctx.repo, async () => {
      const pr = findPull(ctx);
      const body = parseBody(MergePull, ctx.body);
      if (pr.state !== 'open' || pr.pull.merged) throw notMergeable();
      if (pr.pull.draft) throw notMergeable('Pull Request is still a draft');
      const headSha = await branchSha(ctx.repo.dir, pr.pull.head);
      const baseSha = await branchSha(ctx.repo.dir, pr.pull.base);
      if (headSha === undefined || baseSha === undefined) throw notMergeable();
      if (body.sha !== undefined && body.sha !== headSha) {
        throw new HttpError(409, { message: 'Head branch was modified. Review and try the merge again.', documentation_url: DOCS, status: '409' });
      }
      const sha = await mergeCommit(ctx.repo, pr, body, baseSha, headSha);
      await updateBranch(ctx.repo.dir, pr.pull.base, sha, baseSha);
      const now = ctx.state.now();
      Object.assign(pr.pull, { merged: true, mergedAt: now, mergedBy: callerLogin(ctx), mergeCommitSha: sha, lastHeadSha: headSha });
      Object.assign(pr, { state: 'closed', closedAt: now, updatedAt: now });
      return json({ sha, merged: true, message: 'Pull Request successfully merged' } satisfies Schemas['pull-request-merge-result']);
    }),
  ),
  route('GET', '/repos/{owner}/{repo}/pulls/{pull_number}/files', needs('read', 'pull_requests'), async (ctx) => {
    const pr = findPull(ctx);
    const headSha = await headShaOf(ctx.repo, pr);
    const baseSha = (await branchSha(ctx.repo.dir, pr.pull.base)) ?? headSha;
    const files = await changedFiles(ctx.repo.dir, baseSha, headSha);
    return page(
      ctx,
      files.map((f) => ({
        sha: headSha,
        filename: f.filename,
        status: f.status,
        additions: f.additions,
        deletions: f.deletions,
        changes: f.additions + f.deletions,
        blob_url: `${repoHtml(ctx.urls, ctx.repo)}/blob/${headSha}/${f.filename}`,
        raw_url: `${repoHtml(ctx.urls, ctx.repo)}/raw/${headSha}/${f.filename}`,
        contents_url: `${repoUrl(ctx.urls, ctx.repo)}/contents/${f.filename}?ref=${headSha}`,
      })),
    );
  }),

  route('POST', '/repos/{owner}/{repo}/pulls/{pull_number}/reviews', needs('write', 'pull_requests'), async (ctx) => {
    const pr = findPull(ctx);
    const body = parseBody(CreateReview, ctx.body);
    const login = callerLogin(ctx);
    const own = login.toLowerCase() === pr.user.toLowerCase();
    if (own && body.event === 'APPROVE') throw unprocessable('Unprocessable Entity', ['Can not approve your own pull request']);
    if (own && body.event === 'REQUEST_CHANGES') throw unprocessable('Unprocessable Entity', ['Can not request changes on your own pull request']);
    if (body.event === 'REQUEST_CHANGES' && !body.body) throw unprocessable('Unprocessable Entity', ['Body is required for a review that requests changes']);
    if (body.event === 'COMMENT' && !body.body && body.comments.length === 0) throw unprocessable('Unprocessable Entity', ['Body is required for a comment review']);
    const headSha = await headShaOf(ctx.repo, pr);
    const baseSha = (await branchSha(ctx.repo.dir, pr.pull.base)) ?? headSha;
    const changed = new Set((await changedFiles(ctx.repo.dir, baseSha, headSha)).map((f) => f.filename));
    for (const c of body.comments) {
      if (!changed.has(c.path)) throw unprocessable('Unprocessable Entity', ['Path could not be resolved']);
      if (c.line === undefined) continue;
      const lines = await diffLines(ctx.repo.dir, baseSha, headSha, c.path);
      const side = lines[c.side ?? 'RIGHT'];
      if (!side.has(c.line) || (c.start_line !== undefined && !lines[c.start_side ?? c.side ?? 'RIGHT'].has(c.start_line))) {
        throw unprocessable('Unprocessable Entity', ['Pull request review thread line must be part of the diff']);
      }
    }
    const now = ctx.state.now();
    const state = body.event === 'APPROVE' ? 'APPROVED' : body.event === 'REQUEST_CHANGES' ? 'CHANGES_REQUESTED' : body.event === 'COMMENT' ? 'COMMENTED' : 'PENDING';
    const review: FakeReview = { id: ctx.state.nextId(), pullNumber: pr.number, user: ctx.state.user(login).login, body: body.body ?? '', state, commitId: body.commit_id ?? headSha, submittedAt: now };
    ctx.repo.reviews.push(review);
    for (const c of body.comments) {
      ctx.repo.reviewComments.push({
        id: ctx.state.nextId(),
        reviewId: review.id,
        pullNumber: pr.number,
        path: c.path,
        line: c.line ?? null,
        startLine: c.start_line ?? null,
        side: c.side ?? 'RIGHT',
        body: c.body,
        user: review.user,
        commitId: review.commitId,
        createdAt: now,
      });
    }
    return json(reviewShape(ctx, pr, review));
  }),
  route('GET', '/repos/{owner}/{repo}/pulls/{pull_number}/reviews', needs('read', 'pull_requests'), (ctx) => {
    const pr = findPull(ctx);
    return page(ctx, ctx.repo.reviews.filter((r) => r.pullNumber === pr.number).map((r) => reviewShape(ctx, pr, r)));
  }),
  route('GET', '/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}', needs('read', 'pull_requests'), (ctx) => {
    const pr = findPull(ctx);
    const review = ctx.repo.reviews.find((r) => r.pullNumber === pr.number && r.id === intParam(ctx, 'review_id'));
    if (review === undefined) throw notFound();
    return json(reviewShape(ctx, pr, review));
  }),
  route('GET', '/repos/{owner}/{repo}/pulls/{pull_number}/comments', needs('read', 'pull_requests'), (ctx) => {
    const pr = findPull(ctx);
    return page(ctx, ctx.repo.reviewComments.filter((c) => c.pullNumber === pr.number).map((c) => reviewCommentShape(ctx, c)));
  }),
];

/** The commit the base branch moves to: a merge commit, one squashed commit, or the head's commits replayed. */
async function mergeCommit(repo: FakeRepo, pr: OpenPull, body: z.infer<typeof MergePull>, baseSha: string, headSha: string): Promise<string> {
  const tree = await mergeTree(repo.dir, baseSha, headSha);
  if (tree === undefined) throw notMergeable();
  const title = (fallback: string) => body.commit_title ?? fallback;
  if (body.merge_method === 'merge') {
    const message = `${title(`Merge pull request #${pr.number} from ${repo.owner}/${pr.pull.head}`)}\n\n${body.commit_message ?? pr.title}`;
    return commitTree(repo.dir, tree, [baseSha, headSha], message);
  }
  const commits = await commitsBetween(repo.dir, baseSha, headSha);
  if (body.merge_method === 'squash') {
    const infos = await Promise.all(commits.map((sha) => commitInfo(repo.dir, sha)));
    const message = `${title(`${pr.title} (#${pr.number})`)}\n\n${body.commit_message ?? infos.map((c) => `* ${c.message}`).join('\n\n')}`;
    return commitTree(repo.dir, tree, [baseSha], message, infos[0]?.author);
  }
  let current = baseSha;
  for (const sha of commits) {
    const info = await commitInfo(repo.dir, sha);
    const replayed = await mergeTree(repo.dir, current, sha, info.parents[0]);
    if (replayed === undefined) throw notMergeable('This branch can not be rebased');
    current = await commitTree(repo.dir, replayed, [current], info.message, info.author);
  }
  return current;
}
