/**
 * GitHub Actions, as far as Stagegate drives it: a workflow dispatch creates a queued run on the
 * ref's commit (204, or 200 with the run's id when `return_run_details` is set); runs are listed
 * with GitHub's filters and read one by one. Tests move a run along with the fake's
 * `completeRun`, as a runner would.
 */
import { z } from 'zod';
import { resolveCommit } from './bare-repo.js';
import { nodeId, repoHtml, repoUrl, repository, userOf, type RepositoryShape, type Schemas } from './shapes.js';
import { callerLogin, intParam, json, needs, noContent, notFound, page, parseBody, route, unprocessable, type Route, type RouteContext } from './routes.js';
import type { FakeRepo, FakeRun, FakeWorkflow } from './state.js';

type RunShape = Pick<
    Schemas['workflow-run'],
    | 'id'
    | 'name'
    | 'node_id'
    | 'head_branch'
    | 'head_sha'
    | 'path'
    | 'run_number'
    | 'run_attempt'
    | 'event'
    | 'status'
    | 'conclusion'
    | 'workflow_id'
    | 'url'
    | 'html_url'
    | 'pull_requests'
    | 'created_at'
    | 'updated_at'
    | 'actor'
    | 'run_started_at'
    | 'jobs_url'
    | 'logs_url'
    | 'workflow_url'
    | 'display_title'
> & { repository: RepositoryShape };

export function findWorkflow(repo: FakeRepo, id: string): FakeWorkflow | undefined {
  return repo.workflows.find((w) => String(w.id) === id || w.path === id || w.path.split('/').pop() === id);
}

function runShape(ctx: RouteContext, run: FakeRun): RunShape {
  const workflow = ctx.repo.workflows.find((w) => w.id === run.workflowId);
  const url = `${repoUrl(ctx.urls, ctx.repo)}/actions/runs/${run.id}`;
  return {
    id: run.id,
    name: workflow?.name ?? null,
    node_id: nodeId('WorkflowRun', run.id),
    head_branch: run.headBranch,
    head_sha: run.headSha,
    path: workflow?.path ?? '',
    run_number: run.runNumber,
    run_attempt: 1,
    event: run.event,
    status: run.status,
    conclusion: run.conclusion,
    workflow_id: run.workflowId,
    url,
    html_url: `${repoHtml(ctx.urls, ctx.repo)}/actions/runs/${run.id}`,
    pull_requests: [],
    created_at: run.createdAt,
    updated_at: run.updatedAt,
    actor: userOf(ctx.state, ctx.urls, run.actor),
    run_started_at: run.createdAt,
    jobs_url: `${url}/jobs`,
    logs_url: `${url}/logs`,
    workflow_url: `${repoUrl(ctx.urls, ctx.repo)}/actions/workflows/${run.workflowId}`,
    display_title: workflow?.name ?? '',
    repository: repository(ctx.state, ctx.urls, ctx.repo),
  };
}

/** GitHub's `created` filter: `>=2024-01-01T00:00:00Z`, `<…`, `a..b`, or a date prefix. */
function matchesCreated(createdAt: string, filter: string): boolean {
  const range = /^(.*)\.\.(.*)$/.exec(filter);
  if (range !== null) return (range[1] === '*' || createdAt >= (range[1] ?? '')) && (range[2] === '*' || createdAt <= (range[2] ?? ''));
  const op = /^(>=|<=|>|<)(.*)$/.exec(filter);
  if (op === null) return createdAt.startsWith(filter);
  const [, sign, value = ''] = op;
  return sign === '>=' ? createdAt >= value : sign === '<=' ? createdAt <= value : sign === '>' ? createdAt > value : createdAt < value;
}

function listRuns(ctx: RouteContext, runs: FakeRun[]) {
  const q = (name: string) => ctx.query.get(name);
  const filtered = runs
    .filter((r) => q('event') === null || r.event === q('event'))
    .filter((r) => q('branch') === null || r.headBranch === q('branch'))
    .filter((r) => q('head_sha') === null || r.headSha === q('head_sha'))
    .filter((r) => q('actor') === null || r.actor.toLowerCase() === q('actor')?.toLowerCase())
    .filter((r) => q('status') === null || r.status === q('status') || r.conclusion === q('status'))
    .filter((r) => q('created') === null || matchesCreated(r.createdAt, q('created') ?? ''))
    .reverse();
  return page(ctx, filtered.map((r) => runShape(ctx, r)), (workflow_runs) => ({ total_count: filtered.length, workflow_runs }));
}

const Dispatch = z.object({ ref: z.string().min(1), inputs: z.record(z.string(), z.unknown()).optional(), return_run_details: z.boolean().optional() });

export const actionRoutes: Route[] = [
  route('POST', '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', needs('write', 'actions'), async (ctx) => {
    const workflow = findWorkflow(ctx.repo, ctx.params.workflow_id ?? '');
    if (workflow === undefined) throw notFound();
    const body = parseBody(Dispatch, ctx.body);
    const branch = body.ref.replace(/^refs\/heads\//, '');
    const sha = await resolveCommit(ctx.repo.dir, body.ref);
    if (sha === undefined) throw unprocessable(`No ref found for: ${body.ref}`);
    const now = ctx.state.now();
    const run: FakeRun = {
      id: ctx.state.nextId(),
      workflowId: workflow.id,
      runNumber: ctx.repo.runs.filter((r) => r.workflowId === workflow.id).length + 1,
      event: 'workflow_dispatch',
      status: 'queued',
      conclusion: null,
      headBranch: branch,
      headSha: sha,
      actor: callerLogin(ctx),
      inputs: body.inputs ?? {},
      createdAt: now,
      updatedAt: now,
    };
    ctx.repo.runs.push(run);
    if (body.return_run_details !== true) return noContent();
    return json({
      workflow_run_id: run.id,
      run_url: `${repoUrl(ctx.urls, ctx.repo)}/actions/runs/${run.id}`,
      html_url: `${repoHtml(ctx.urls, ctx.repo)}/actions/runs/${run.id}`,
    } satisfies Schemas['workflow-dispatch-response']);
  }),
  route('GET', '/repos/{owner}/{repo}/actions/runs', needs('read', 'actions'), (ctx) => listRuns(ctx, ctx.repo.runs)),
  route('GET', '/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs', needs('read', 'actions'), (ctx) => {
    const workflow = findWorkflow(ctx.repo, ctx.params.workflow_id ?? '');
    if (workflow === undefined) throw notFound();
    return listRuns(ctx, ctx.repo.runs.filter((r) => r.workflowId === workflow.id));
  }),
  route('GET', '/repos/{owner}/{repo}/actions/runs/{run_id}', needs('read', 'actions'), (ctx) => {
    const id = intParam(ctx, 'run_id');
    const run = ctx.repo.runs.find((r) => r.id === id);
    if (run === undefined) throw notFound();
    return json(runShape(ctx, run));
  }),
];
