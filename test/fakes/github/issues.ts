/**
 * Issues, their comments, labels and reactions; and `GET /repos/{o}/{r}`. Pull requests are
 * issues here too (one numbering), so these routes serve both, as GitHub's do.
 */
import { z } from 'zod';
import { issue, issueComment, label, repository } from './shapes.js';
import { HttpError, DOCS, callerLogin, intParam, json, needs, noContent, notFound, page, parseBody, route, validationFailed, type Route, type RouteContext } from './routes.js';
import type { FakeComment, FakeIssue, FakeLabel, FakeRepo } from './state.js';

const issuesOrPulls = (level: 'read' | 'write') => needs(level, 'issues', 'pull_requests');

function findIssue(ctx: RouteContext): FakeIssue {
  const found = ctx.state.issue(ctx.repo, intParam(ctx, 'issue_number'));
  if (found === undefined) throw notFound();
  return found;
}

function findComment(ctx: RouteContext): FakeComment {
  const id = intParam(ctx, 'comment_id');
  const found = ctx.repo.comments.find((c) => c.id === id);
  if (found === undefined) throw notFound();
  return found;
}

/** The repository's label by name, created (grey) when missing, as adding a label to an issue does. */
export function ensureLabel(ctx: Pick<RouteContext, 'state'>, repo: FakeRepo, name: string): FakeLabel {
  const key = name.toLowerCase();
  let l = repo.labels.get(key);
  if (l === undefined) {
    l = { id: ctx.state.nextId(), name, color: 'ededed', description: null };
    repo.labels.set(key, l);
  }
  return l;
}

const issueLabels = (ctx: RouteContext, i: FakeIssue) =>
  i.labels.map((name) => label(ctx.urls, ctx.repo, ensureLabel(ctx, ctx.repo, name)));

const CreateIssue = z.object({ title: z.string().min(1), body: z.string().nullish(), labels: z.array(z.string()).optional() });
const UpdateIssue = z.object({
  title: z.string().min(1).optional(),
  body: z.string().nullish(),
  state: z.enum(['open', 'closed']).optional(),
  labels: z.array(z.string()).optional(),
});
const CommentBody = z.object({ body: z.string().min(1, "wasn't supplied") });
const AddLabels = z.union([z.object({ labels: z.array(z.string().min(1)).min(1) }), z.array(z.string().min(1)).min(1).transform((labels) => ({ labels }))]);
const CreateLabel = z.object({
  name: z.string().min(1),
  color: z.string().regex(/^[0-9a-fA-F]{6}$/).optional(),
  description: z.string().nullish(),
});
const Reaction = z.object({ content: z.enum(['+1', '-1', 'laugh', 'confused', 'heart', 'hooray', 'rocket', 'eyes']) });

export const issueRoutes: Route[] = [
  route('GET', '/repos/{owner}/{repo}', undefined, (ctx) => json(repository(ctx.state, ctx.urls, ctx.repo))),

  route('POST', '/repos/{owner}/{repo}/issues', needs('write', 'issues'), (ctx) => {
    const body = parseBody(CreateIssue, ctx.body);
    const created = addIssue(ctx, ctx.repo, { title: body.title, body: body.body ?? null, user: callerLogin(ctx), labels: body.labels ?? [] });
    return json(issue(ctx.state, ctx.urls, ctx.repo, created), 201);
  }),
  route('GET', '/repos/{owner}/{repo}/issues/{issue_number}', issuesOrPulls('read'), (ctx) => json(issue(ctx.state, ctx.urls, ctx.repo, findIssue(ctx)))),
  route('PATCH', '/repos/{owner}/{repo}/issues/{issue_number}', issuesOrPulls('write'), (ctx) => {
    const i = findIssue(ctx);
    const body = parseBody(UpdateIssue, ctx.body);
    if (body.title !== undefined) i.title = body.title;
    if (body.body !== undefined) i.body = body.body;
    if (body.labels !== undefined) i.labels = body.labels.map((name) => ensureLabel(ctx, ctx.repo, name).name);
    if (body.state !== undefined && body.state !== i.state) {
      i.state = body.state;
      i.closedAt = body.state === 'closed' ? ctx.state.now() : null;
    }
    i.updatedAt = ctx.state.now();
    return json(issue(ctx.state, ctx.urls, ctx.repo, i));
  }),

  route('GET', '/repos/{owner}/{repo}/issues/{issue_number}/comments', issuesOrPulls('read'), (ctx) => {
    const i = findIssue(ctx);
    const since = ctx.query.get('since');
    const comments = ctx.repo.comments.filter((c) => c.issueNumber === i.number && (since === null || c.updatedAt >= since));
    return page(ctx, comments.map((c) => issueComment(ctx.state, ctx.urls, ctx.repo, c)));
  }),
  route('POST', '/repos/{owner}/{repo}/issues/{issue_number}/comments', issuesOrPulls('write'), (ctx) => {
    const i = findIssue(ctx);
    const { body } = parseBody(CommentBody, ctx.body);
    const c = addComment(ctx, ctx.repo, i.number, callerLogin(ctx), body);
    return json(issueComment(ctx.state, ctx.urls, ctx.repo, c), 201);
  }),
  route('GET', '/repos/{owner}/{repo}/issues/comments/{comment_id}', issuesOrPulls('read'), (ctx) =>
    json(issueComment(ctx.state, ctx.urls, ctx.repo, findComment(ctx))),
  ),
  route('PATCH', '/repos/{owner}/{repo}/issues/comments/{comment_id}', issuesOrPulls('write'), (ctx) => {
    const c = findComment(ctx);
    c.body = parseBody(CommentBody, ctx.body).body;
    c.updatedAt = ctx.state.now();
    return json(issueComment(ctx.state, ctx.urls, ctx.repo, c));
  }),
  route('DELETE', '/repos/{owner}/{repo}/issues/comments/{comment_id}', issuesOrPulls('write'), (ctx) => {
    const c = findComment(ctx);
    ctx.repo.comments.splice(ctx.repo.comments.indexOf(c), 1);
    return noContent();
  }),
  route('POST', '/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions', issuesOrPulls('write'), (ctx) => {
    const c = findComment(ctx);
    const { content } = parseBody(Reaction, ctx.body);
    const login = callerLogin(ctx);
    const existed = c.reactions.some((r) => r.user === login && r.content === content);
    if (!existed) c.reactions.push({ user: login, content });
    return json({ id: ctx.state.nextId(), content, user: ctx.state.user(login).login, created_at: ctx.state.now() }, existed ? 200 : 201);
  }),

  route('GET', '/repos/{owner}/{repo}/issues/{issue_number}/labels', issuesOrPulls('read'), (ctx) => page(ctx, issueLabels(ctx, findIssue(ctx)))),
  route('POST', '/repos/{owner}/{repo}/issues/{issue_number}/labels', issuesOrPulls('write'), (ctx) => {
    const i = findIssue(ctx);
    for (const name of parseBody(AddLabels, ctx.body).labels) {
      const l = ensureLabel(ctx, ctx.repo, name);
      if (!i.labels.some((n) => n.toLowerCase() === l.name.toLowerCase())) i.labels.push(l.name);
    }
    i.updatedAt = ctx.state.now();
    return json(issueLabels(ctx, i));
  }),
  route('DELETE', '/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}', issuesOrPulls('write'), (ctx) => {
    const i = findIssue(ctx);
    const name = (ctx.params.name ?? '').toLowerCase();
    const at = i.labels.findIndex((n) => n.toLowerCase() === name);
    if (at < 0) throw new HttpError(404, { message: 'Label does not exist', documentation_url: DOCS, status: '404' });
    i.labels.splice(at, 1);
    i.updatedAt = ctx.state.now();
    return json(issueLabels(ctx, i));
  }),
  route('POST', '/repos/{owner}/{repo}/labels', needs('write', 'issues', 'pull_requests'), (ctx) => {
    const body = parseBody(CreateLabel, ctx.body);
    if (ctx.repo.labels.has(body.name.toLowerCase())) {
      throw validationFailed({ resource: 'Label', code: 'already_exists', field: 'name' });
    }
    const l = ensureLabel(ctx, ctx.repo, body.name);
    l.color = (body.color ?? 'ededed').toLowerCase();
    l.description = body.description ?? null;
    return json(label(ctx.urls, ctx.repo, l), 201);
  }),
  route('GET', '/repos/{owner}/{repo}/labels/{name}', issuesOrPulls('read'), (ctx) => {
    const l = ctx.repo.labels.get((ctx.params.name ?? '').toLowerCase());
    if (l === undefined) throw notFound();
    return json(label(ctx.urls, ctx.repo, l));
  }),
  route('GET', '/repos/{owner}/{repo}/labels', issuesOrPulls('read'), (ctx) => page(ctx, [...ctx.repo.labels.values()].map((l) => label(ctx.urls, ctx.repo, l)))),
];

/** A new issue (or, with `pull`, a pull request) under the repository's next number. */
export function addIssue(
  ctx: Pick<RouteContext, 'state'>,
  repo: FakeRepo,
  fields: { title: string; body: string | null; user: string; labels?: string[]; pull?: FakeIssue['pull'] },
): FakeIssue {
  const now = ctx.state.now();
  const created: FakeIssue = {
    id: ctx.state.nextId(),
    number: repo.nextNumber++,
    title: fields.title,
    body: fields.body,
    state: 'open',
    user: ctx.state.user(fields.user).login,
    labels: (fields.labels ?? []).map((name) => ensureLabel(ctx, repo, name).name),
    createdAt: now,
    updatedAt: now,
    closedAt: null,
    ...(fields.pull === undefined ? {} : { pull: fields.pull }),
  };
  repo.issues.set(created.number, created);
  return created;
}

export function addComment(ctx: Pick<RouteContext, 'state'>, repo: FakeRepo, issueNumber: number, user: string, body: string): FakeComment {
  const now = ctx.state.now();
  const c: FakeComment = { id: ctx.state.nextId(), issueNumber, body, user: ctx.state.user(user).login, createdAt: now, updatedAt: now, reactions: [] };
  repo.comments.push(c);
  return c;
}
