/**
 * Review threads: a reply in a pull request review comment's thread (REST), and the two GraphQL
 * operations Stagegate uses on threads, served at `POST /graphql` (and `/api/graphql`, where
 * Octokit sends GraphQL when its base URL ends in `/api/v3`): the `reviewThreads` of a pull
 * request and `resolveReviewThread`. The GraphQL endpoint is no GraphQL server: it tells the two
 * operations apart by their field names and reads the variables by name (`owner`, `repo`,
 * `number`, `threadId`); any other query is a failure of the fake, so a test notices.
 * A thread's id is `PRRT_fake_<first comment id>`; resolving it marks that comment.
 */
import { z } from 'zod';
import { reviewCommentShape } from './pulls.js';
import { callerLogin, intParam, json, needs, notFound, parseBody, route, unprocessable, type Route, type RouteContext } from './routes.js';
import type { FakeRepo, FakeReview, FakeReviewComment } from './state.js';

const Reply = z.object({ body: z.string().min(1) });
const GraphqlRequest = z.object({ query: z.string().min(1), variables: z.record(z.string(), z.unknown()).default({}) });
const ThreadsVariables = z.object({ owner: z.string(), repo: z.string(), number: z.number().int().positive() });
const ResolveVariables = z.object({ threadId: z.string() });

const THREAD_PREFIX = 'PRRT_fake_';

export const threadIdOf = (comment: Pick<FakeReviewComment, 'id'>): string => `${THREAD_PREFIX}${comment.id}`;

function graphql(ctx: RouteContext) {
  const request = GraphqlRequest.parse(ctx.body);
  if (request.query.includes('resolveReviewThread')) return resolveThread(ctx, ResolveVariables.parse(request.variables));
  if (request.query.includes('reviewThreads')) return listThreads(ctx, ThreadsVariables.parse(request.variables));
  throw new Error(`fake GitHub: GraphQL query not supported: ${request.query.slice(0, 200)}`);
}

function listThreads(ctx: RouteContext, vars: z.infer<typeof ThreadsVariables>) {
  const repo = ctx.state.repo(vars.owner, vars.repo);
  if (repo === undefined) return json({ data: { repository: null }, errors: [{ type: 'NOT_FOUND', message: `Could not resolve to a Repository with the name '${vars.owner}/${vars.repo}'.` }] });
  const comments = repo.reviewComments.filter((c) => c.pullNumber === vars.number);
  const nodes = comments
    .filter((c) => c.inReplyTo === undefined)
    .map((first) => ({
      id: threadIdOf(first),
      isResolved: first.resolvedBy !== undefined,
      comments: { nodes: [first, ...comments.filter((c) => c.inReplyTo === first.id)].map((c) => ({ databaseId: c.id })) },
    }));
  return json({ data: { repository: { pullRequest: { reviewThreads: { nodes, pageInfo: { hasNextPage: false, endCursor: null } } } } } });
}

function resolveThread(ctx: RouteContext, vars: z.infer<typeof ResolveVariables>) {
  const id = vars.threadId.startsWith(THREAD_PREFIX) ? Number(vars.threadId.slice(THREAD_PREFIX.length)) : NaN;
  for (const repo of ctx.state.repos.values()) {
    const first = repo.reviewComments.find((c) => c.id === id && c.inReplyTo === undefined);
    if (first === undefined) continue;
    first.resolvedBy ??= callerLogin(ctx);
    return json({ data: { resolveReviewThread: { thread: { id: vars.threadId, isResolved: true } } } });
  }
  return json({ data: { resolveReviewThread: null }, errors: [{ type: 'NOT_FOUND', message: `Could not resolve to a node with the global id of '${vars.threadId}'` }] });
}

function replyTo(ctx: RouteContext, repo: FakeRepo) {
  const pullNumber = intParam(ctx, 'pull_number');
  const commentId = intParam(ctx, 'comment_id');
  const body = parseBody(Reply, ctx.body);
  const first = repo.reviewComments.find((c) => c.id === commentId && c.pullNumber === pullNumber);
  if (first === undefined || ctx.state.pull(repo, pullNumber) === undefined) throw notFound();
  if (first.inReplyTo !== undefined) throw unprocessable('Validation Failed', [{ resource: 'PullRequestReviewComment', code: 'invalid', field: 'in_reply_to', message: 'replies to replies are not supported' }]);
  // As on GitHub, a reply is a review of its own (submitted, commented) holding that one comment.
  const review: FakeReview = { id: ctx.state.nextId(), pullNumber, user: ctx.state.user(callerLogin(ctx)).login, body: '', state: 'COMMENTED', commitId: first.commitId, submittedAt: ctx.state.now() };
  repo.reviews.push(review);
  const reply: FakeReviewComment = {
    id: ctx.state.nextId(),
    reviewId: review.id,
    pullNumber,
    path: first.path,
    line: first.line,
    startLine: first.startLine,
    side: first.side,
    body: body.body,
    user: ctx.state.user(callerLogin(ctx)).login,
    commitId: first.commitId,
    createdAt: ctx.state.now(),
    inReplyTo: first.id,
  };
  repo.reviewComments.push(reply);
  return json(reviewCommentShape(ctx, reply), 201);
}

export const reviewThreadRoutes: Route[] = [
  route('POST', '/repos/{owner}/{repo}/pulls/{pull_number}/comments/{comment_id}/replies', needs('write', 'pull_requests'), (ctx) => replyTo(ctx, ctx.repo)),
  route('POST', '/graphql', undefined, graphql),
  route('POST', '/api/graphql', undefined, graphql),
];
