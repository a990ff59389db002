/**
 * Check runs (created and updated only by Apps, as on GitHub) and commit statuses, both keyed by
 * commit sha; a ref in the path (branch, tag or sha) is resolved in the bare repository. The
 * combined status is GitHub's: failure if any context's latest status failed or errored,
 * pending if any is pending or there are none, success otherwise.
 */
import { z } from 'zod';
import { resolveCommit } from './bare-repo.js';
import { nodeId, repoHtml, repoUrl, repository, userOf, type Schemas } from './shapes.js';
import { callerLogin, intParam, json, needs, notFound, page, parseBody, route, unprocessable, type Route, type RouteContext } from './routes.js';
import type { FakeCheckRun, FakeGitHubState, FakeRepo, FakeStatus } from './state.js';
import type { FakeUrls } from './routes.js';

export async function commitOf(ctx: RouteContext, ref: string): Promise<string> {
  const sha = await resolveCommit(ctx.repo.dir, ref);
  if (sha === undefined) throw unprocessable(`No commit found for SHA: ${ref}`);
  return sha;
}

type CheckRunShape = Pick<
  Schemas['check-run'],
  'id' | 'head_sha' | 'node_id' | 'external_id' | 'url' | 'html_url' | 'details_url' | 'status' | 'conclusion' | 'started_at' | 'completed_at' | 'output' | 'name' | 'check_suite' | 'pull_requests'
> & { app: { id: number; slug: string; name: string } };

function checkRunShape(urls: FakeUrls, repo: FakeRepo, r: FakeCheckRun): CheckRunShape {
  const url = `${repoUrl(urls, repo)}/check-runs/${r.id}`;
  return {
    id: r.id,
    head_sha: r.headSha,
    node_id: nodeId('CheckRun', r.id),
    external_id: r.externalId,
    url,
    html_url: `${repoHtml(urls, repo)}/runs/${r.id}`,
    details_url: r.detailsUrl,
    status: r.status,
    conclusion: r.conclusion,
    started_at: r.startedAt,
    completed_at: r.completedAt,
    output: { ...r.output, annotations_count: r.annotations.length, annotations_url: `${url}/annotations` },
    name: r.name,
    check_suite: { id: r.id },
    app: { id: r.app.length, slug: r.app, name: r.app },
    pull_requests: [],
  };
}

function statusShape(state: FakeGitHubState, urls: FakeUrls, repo: FakeRepo, s: FakeStatus): Schemas['status'] {
  return {
    url: `${repoUrl(urls, repo)}/statuses/${s.sha}`,
    avatar_url: null,
    id: s.id,
    node_id: nodeId('StatusContext', s.id),
    state: s.state,
    description: s.description,
    target_url: s.targetUrl,
    context: s.context,
    created_at: s.createdAt,
    updated_at: s.createdAt,
    creator: userOf(state, urls, s.creator),
  };
}

/** The latest status per context, newest first. */
export function latestStatuses(repo: FakeRepo, sha: string): FakeStatus[] {
  const latest = new Map<string, FakeStatus>();
  for (const s of repo.statuses) if (s.sha === sha) latest.set(s.context, s);
  return [...latest.values()].reverse();
}

export function combinedState(statuses: FakeStatus[]): 'failure' | 'pending' | 'success' {
  if (statuses.some((s) => s.state === 'failure' || s.state === 'error')) return 'failure';
  if (statuses.length === 0 || statuses.some((s) => s.state === 'pending')) return 'pending';
  return 'success';
}

const Conclusion = z.enum(['success', 'failure', 'neutral', 'cancelled', 'skipped', 'timed_out', 'action_required']);
const Output = z.object({ title: z.string(), summary: z.string(), text: z.string().optional() });
const CheckRunFields = z.object({
  name: z.string().min(1),
  head_sha: z.string().min(1),
  status: z.enum(['queued', 'in_progress', 'completed']).optional(),
  conclusion: Conclusion.optional(),
  details_url: z.string().optional(),
  external_id: z.string().optional(),
  started_at: z.string().optional(),
  completed_at: z.string().optional(),
  output: Output.optional(),
});
const CreateStatus = z.object({
  state: z.enum(['error', 'failure', 'pending', 'success']),
  target_url: z.string().nullish(),
  description: z.string().nullish(),
  context: z.string().default('default'),
});

/** Applies created/updated fields to a check run; `completed` needs a conclusion, a conclusion completes it. */
export function applyCheckRun(state: FakeGitHubState, run: FakeCheckRun, fields: Partial<z.infer<typeof CheckRunFields>>): void {
  if (fields.name !== undefined) run.name = fields.name;
  if (fields.details_url !== undefined) run.detailsUrl = fields.details_url;
  if (fields.external_id !== undefined) run.externalId = fields.external_id;
  if (fields.output !== undefined) run.output = { title: fields.output.title, summary: fields.output.summary, text: fields.output.text ?? null };
  if (fields.status !== undefined) run.status = fields.status;
  if (fields.conclusion !== undefined) {
    run.conclusion = fields.conclusion;
    run.status = 'completed';
  }
  if (run.status === 'completed' && run.conclusion === null) throw unprocessable('Invalid request.\n\n"conclusion" wasn\'t supplied.');
  if (run.status !== 'queued') run.startedAt ??= fields.started_at ?? state.now();
  if (run.status === 'completed') run.completedAt ??= fields.completed_at ?? state.now();
}

function findRun(ctx: RouteContext): FakeCheckRun {
  const id = intParam(ctx, 'check_run_id');
  const run = ctx.repo.checkRuns.find((r) => r.id === id);
  if (run === undefined) throw notFound();
  return run;
}

export const checkRoutes: Route[] = [
  route('GET', '/repos/{owner}/{repo}/commits/{ref}/check-runs', needs('read', 'checks'), async (ctx) => {
    const sha = await commitOf(ctx, ctx.params.ref ?? '');
    const name = ctx.query.get('check_name');
    const status = ctx.query.get('status');
    let runs = ctx.repo.checkRuns.filter((r) => r.headSha === sha && (name === null || r.name === name) && (status === null || r.status === status));
    if (ctx.query.get('filter') !== 'all') {
      const latest = new Map<string, FakeCheckRun>();
      for (const r of runs) latest.set(`${r.app}/${r.name}`, r);
      runs = [...latest.values()];
    }
    runs = [...runs].reverse();
    return page(ctx, runs.map((r) => checkRunShape(ctx.urls, ctx.repo, r)), (check_runs) => ({ total_count: runs.length, check_runs }));
  }),
  route(
    'POST',
    '/repos/{owner}/{repo}/check-runs',
    needs('write', 'checks'),
    async (ctx) => {
      const fields = parseBody(CheckRunFields, ctx.body);
      const headSha = await commitOf(ctx, fields.head_sha);
      const run: FakeCheckRun = {
        id: ctx.state.nextId(),
        name: fields.name,
        headSha,
        status: 'queued',
        conclusion: null,
        startedAt: null,
        completedAt: null,
        detailsUrl: null,
        externalId: null,
        output: { title: null, summary: null, text: null },
        app: ctx.state.app?.slug ?? callerLogin(ctx),
        annotations: [],
        log: null,
      };
      applyCheckRun(ctx.state, run, { ...fields, status: fields.status ?? 'queued' });
      ctx.repo.checkRuns.push(run);
      return json(checkRunShape(ctx.urls, ctx.repo, run), 201);
    },
    { appsOnly: true },
  ),
  route('GET', '/repos/{owner}/{repo}/check-runs/{check_run_id}', needs('read', 'checks'), (ctx) => json(checkRunShape(ctx.urls, ctx.repo, findRun(ctx)))),
  route('GET', '/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations', needs('read', 'checks'), (ctx) =>
    page(
      ctx,
      findRun(ctx).annotations.map((a) => ({
        path: a.path,
        start_line: a.startLine,
        end_line: a.startLine,
        start_column: null,
        end_column: null,
        annotation_level: a.level,
        title: a.title,
        message: a.message,
        raw_details: null,
        blob_href: '',
      })),
    ),
  ),
  // GitHub answers with a redirect to the log's storage; the fake serves the text itself.
  route('GET', '/repos/{owner}/{repo}/actions/jobs/{job_id}/logs', needs('read', 'actions'), (ctx) => {
    const id = intParam(ctx, 'job_id');
    const run = ctx.repo.checkRuns.find((r) => r.id === id && r.app === 'github-actions');
    if (run?.log == null) throw notFound();
    return { status: 200, text: run.log };
  }),
  route(
    'PATCH',
    '/repos/{owner}/{repo}/check-runs/{check_run_id}',
    needs('write', 'checks'),
    (ctx) => {
      const run = findRun(ctx);
      applyCheckRun(ctx.state, run, parseBody(CheckRunFields.partial(), ctx.body));
      return json(checkRunShape(ctx.urls, ctx.repo, run));
    },
    { appsOnly: true },
  ),
  route('GET', '/repos/{owner}/{repo}/commits/{ref}/status', needs('read', 'statuses'), async (ctx) => {
    const sha = await commitOf(ctx, ctx.params.ref ?? '');
    const statuses = latestStatuses(ctx.repo, sha);
    const body: Omit<Schemas['combined-commit-status'], 'repository'> & { repository: ReturnType<typeof repository> } = {
      state: combinedState(statuses),
      statuses: statuses.map((s) => ({ ...statusShape(ctx.state, ctx.urls, ctx.repo, s), required: false })),
      sha,
      total_count: statuses.length,
      repository: repository(ctx.state, ctx.urls, ctx.repo),
      commit_url: `${repoUrl(ctx.urls, ctx.repo)}/commits/${sha}`,
      url: `${repoUrl(ctx.urls, ctx.repo)}/commits/${sha}/status`,
    };
    return json(body);
  }),
  route('POST', '/repos/{owner}/{repo}/statuses/{sha}', needs('write', 'statuses'), async (ctx) => {
    const sha = await commitOf(ctx, ctx.params.sha ?? '');
    const body = parseBody(CreateStatus, ctx.body);
    const s = addStatus(ctx.state, ctx.repo, sha, { ...body, creator: callerLogin(ctx) });
    return json(statusShape(ctx.state, ctx.urls, ctx.repo, s), 201);
  }),
];

export function addStatus(
  state: FakeGitHubState,
  repo: FakeRepo,
  sha: string,
  fields: { state: FakeStatus['state']; context: string; description?: string | null; target_url?: string | null; creator: string },
): FakeStatus {
  const s: FakeStatus = {
    id: state.nextId(),
    sha,
    context: fields.context,
    state: fields.state,
    description: fields.description ?? null,
    targetUrl: fields.target_url ?? null,
    creator: state.user(fields.creator).login,
    createdAt: state.now(),
  };
  repo.statuses.push(s);
  return s;
}
