/**
 * Deployments and their statuses. As on GitHub, creating a deployment checks the ref's commit
 * statuses unless `required_contexts` says otherwise: any context not `success` answers 409.
 * (GitHub's `auto_merge` of the default branch into the ref is not modelled.)
 */
import { z } from 'zod';
import { resolveCommit } from './bare-repo.js';
import { latestStatuses } from './checks.js';
import { nodeId, repoUrl, userOf, type Schemas } from './shapes.js';
import { DOCS, HttpError, callerLogin, intParam, json, needs, notFound, page, parseBody, route, unprocessable, type FakeUrls, type Route, type RouteContext } from './routes.js';
import type { FakeDeployment, FakeDeploymentStatus, FakeGitHubState, FakeRepo } from './state.js';

type DeploymentShape = Pick<
  Schemas['deployment'],
  | 'url'
  | 'id'
  | 'node_id'
  | 'sha'
  | 'ref'
  | 'task'
  | 'payload'
  | 'original_environment'
  | 'environment'
  | 'description'
  | 'creator'
  | 'created_at'
  | 'updated_at'
  | 'statuses_url'
  | 'repository_url'
  | 'transient_environment'
  | 'production_environment'
>;

function deploymentShape(state: FakeGitHubState, urls: FakeUrls, repo: FakeRepo, d: FakeDeployment): DeploymentShape {
  const url = `${repoUrl(urls, repo)}/deployments/${d.id}`;
  return {
    url,
    id: d.id,
    node_id: nodeId('Deployment', d.id),
    sha: d.sha,
    ref: d.ref,
    task: d.task,
    payload: d.payload,
    original_environment: d.environment,
    environment: d.environment,
    description: d.description,
    creator: userOf(state, urls, d.creator),
    created_at: d.createdAt,
    updated_at: d.createdAt,
    statuses_url: `${url}/statuses`,
    repository_url: repoUrl(urls, repo),
    transient_environment: d.transient,
    production_environment: d.production,
  };
}

function deploymentStatusShape(state: FakeGitHubState, urls: FakeUrls, repo: FakeRepo, s: FakeDeploymentStatus): Schemas['deployment-status'] {
  const deploymentUrl = `${repoUrl(urls, repo)}/deployments/${s.deploymentId}`;
  return {
    url: `${deploymentUrl}/statuses/${s.id}`,
    id: s.id,
    node_id: nodeId('DeploymentStatus', s.id),
    state: s.state,
    creator: userOf(state, urls, s.creator),
    description: s.description,
    environment: s.environment,
    target_url: s.targetUrl,
    created_at: s.createdAt,
    updated_at: s.createdAt,
    deployment_url: deploymentUrl,
    repository_url: repoUrl(urls, repo),
    environment_url: s.environmentUrl,
    log_url: s.logUrl,
  };
}

const CreateDeployment = z.object({
  ref: z.string().min(1),
  task: z.string().default('deploy'),
  auto_merge: z.boolean().optional(),
  required_contexts: z.array(z.string()).optional(),
  payload: z.union([z.record(z.string(), z.unknown()), z.string()]).default({}),
  environment: z.string().default('production'),
  description: z.string().nullish(),
  transient_environment: z.boolean().default(false),
  production_environment: z.boolean().optional(),
});
const DeploymentState = z.enum(['error', 'failure', 'inactive', 'pending', 'success', 'queued', 'in_progress']);
const CreateDeploymentStatus = z.object({
  state: DeploymentState,
  target_url: z.string().optional(),
  log_url: z.string().optional(),
  description: z.string().optional(),
  environment: z.string().optional(),
  environment_url: z.string().optional(),
  auto_inactive: z.boolean().optional(),
});
export type DeploymentStatusFields = z.input<typeof CreateDeploymentStatus>;

function findDeployment(ctx: RouteContext): FakeDeployment {
  const id = intParam(ctx, 'deployment_id');
  const found = ctx.repo.deployments.find((d) => d.id === id);
  if (found === undefined) throw notFound();
  return found;
}

export const deploymentRoutes: Route[] = [
  route('POST', '/repos/{owner}/{repo}/deployments', needs('write', 'deployments'), async (ctx) => {
    const body = parseBody(CreateDeployment, ctx.body);
    const sha = await resolveCommit(ctx.repo.dir, body.ref);
    if (sha === undefined) throw unprocessable(`No ref found for: ${body.ref}`);
    const statuses = latestStatuses(ctx.repo, sha);
    const required = body.required_contexts ?? statuses.map((s) => s.context);
    const failing = required.filter((context) => statuses.find((s) => s.context === context)?.state !== 'success');
    if (failing.length > 0) {
      throw new HttpError(409, {
        message: `Conflict: Commit status checks failed for ${body.ref}.`,
        errors: [{ contexts: failing.map((context) => ({ context, state: statuses.find((s) => s.context === context)?.state ?? 'missing' })), resource: 'Deployment', field: 'required_contexts', code: 'invalid' }],
        documentation_url: DOCS,
        status: '409',
      });
    }
    const d: FakeDeployment = {
      id: ctx.state.nextId(),
      sha,
      ref: body.ref,
      task: body.task,
      environment: body.environment,
      description: body.description ?? null,
      payload: body.payload,
      creator: callerLogin(ctx),
      transient: body.transient_environment,
      production: body.production_environment ?? body.environment === 'production',
      createdAt: ctx.state.now(),
    };
    ctx.repo.deployments.push(d);
    return json(deploymentShape(ctx.state, ctx.urls, ctx.repo, d), 201);
  }),
  route('GET', '/repos/{owner}/{repo}/deployments', needs('read', 'deployments'), (ctx) => {
    const q = (name: string) => ctx.query.get(name);
    const found = ctx.repo.deployments
      .filter((d) => (q('sha') === null || d.sha === q('sha')) && (q('ref') === null || d.ref === q('ref')))
      .filter((d) => (q('task') === null || d.task === q('task')) && (q('environment') === null || d.environment === q('environment')))
      .reverse();
    return page(ctx, found.map((d) => deploymentShape(ctx.state, ctx.urls, ctx.repo, d)));
  }),
  route('GET', '/repos/{owner}/{repo}/deployments/{deployment_id}', needs('read', 'deployments'), (ctx) =>
    json(deploymentShape(ctx.state, ctx.urls, ctx.repo, findDeployment(ctx))),
  ),
  route('POST', '/repos/{owner}/{repo}/deployments/{deployment_id}/statuses', needs('write', 'deployments'), (ctx) => {
    const d = findDeployment(ctx);
    const s = addDeploymentStatus(ctx.state, ctx.repo, d, callerLogin(ctx), parseBody(CreateDeploymentStatus, ctx.body));
    return json(deploymentStatusShape(ctx.state, ctx.urls, ctx.repo, s), 201);
  }),
  route('GET', '/repos/{owner}/{repo}/deployments/{deployment_id}/statuses', needs('read', 'deployments'), (ctx) => {
    const d = findDeployment(ctx);
    const statuses = ctx.repo.deploymentStatuses.filter((s) => s.deploymentId === d.id).reverse();
    return page(ctx, statuses.map((s) => deploymentStatusShape(ctx.state, ctx.urls, ctx.repo, s)));
  }),
];

/** A new status on a deployment; a `success` marks the environment's earlier deployments inactive (GitHub's `auto_inactive`). */
export function addDeploymentStatus(state: FakeGitHubState, repo: FakeRepo, d: FakeDeployment, creator: string, fields: DeploymentStatusFields): FakeDeploymentStatus {
  const body = CreateDeploymentStatus.parse(fields);
  const environment = body.environment ?? d.environment;
  const s: FakeDeploymentStatus = {
    id: state.nextId(),
    deploymentId: d.id,
    state: body.state,
    description: body.description ?? '',
    environment,
    targetUrl: body.target_url ?? body.log_url ?? '',
    logUrl: body.log_url ?? body.target_url ?? '',
    environmentUrl: body.environment_url ?? '',
    creator: state.user(creator).login,
    createdAt: state.now(),
  };
  repo.deploymentStatuses.push(s);
  if (body.state === 'success' && body.auto_inactive !== false) {
    for (const other of repo.deployments) {
      if (other.id === d.id || other.environment !== environment) continue;
      const last = repo.deploymentStatuses.filter((x) => x.deploymentId === other.id).pop();
      if (last !== undefined && last.state === 'success') {
        repo.deploymentStatuses.push({ ...last, id: state.nextId(), state: 'inactive', createdAt: state.now() });
      }
    }
  }
  return s;
}
