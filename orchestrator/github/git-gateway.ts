/**
 * The git gateway: `<serve>/git/<task>/<owner>/<repo>.git`, git's smart HTTP protocol proxied to
 * `<github.gitUrl>/<owner>/<repo>.git` with a short-lived token added on the way. Agents clone,
 * fetch and push through it with a plain URL and no credentials of their own, so the processes
 * that run model-written commands never hold a GitHub token; serve mints one per request, scoped
 * to that one repository with `contents: read` (fetch) or `contents: write` (push).
 *
 * What passes:
 * - only for a task that came from that repository's issue and is not done or cancelled;
 * - fetches of that repository;
 * - pushes that create or fast-forward the task's own branch, nothing else: no other ref, no
 *   deletion, no force (except in the task's rebase update, and then never over a commit
 *   Stagegate did not make), and no commit that adds a secret (the coder scans its own pushes, but a
 *   compromised one could skip that). Each push is read before it is forwarded (its commands,
 *   and its pack: `push-check.ts`); a refused push is answered in git's protocol, so the client
 *   prints `! [remote rejected] <ref> (<why>)`, e.g. `(secret found: src/a.ts:3 (aws/…))`, and
 *   nothing reaches GitHub.
 *
 * The gateway does not authenticate its callers: keep `/git/` where only workers reach it (the
 * default serve address is loopback; behind a proxy, publish only `/webhooks/github`).
 */
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { gunzipSync } from 'node:zlib';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { TaskId } from '../../core/bus/messages.js';
import { errorMessage, isStagegateError } from '../../core/errors.js';
import type { GitHubClient } from '../../core/github/client.js';
import type { Logger } from '../../core/log.js';
import type { TaskRecord } from '../../core/task-record.js';
import type { RouteModule } from '../serve/route-module.js';
import type { TaskClient } from '../task-client.js';
import { OwnerLogin, RepositoryName } from './payloads.js';
import { PktLineError, ZERO_SHA, addCapabilities, parseReceivePackRequest, rejectionReport, type RefUpdate } from './pkt-line.js';
import { refuseUnsafeUpdates, type Upstream } from './push-check.js';

export const GIT_GATEWAY_PATH = '/git';

const ROUTE = /^\/git\/([^/]+)\/([^/]+)\/([^/]+)\.git\/(info\/refs|git-upload-pack|git-receive-pack)$/;
const Service = z.enum(['git-upload-pack', 'git-receive-pack']);
type Service = z.infer<typeof Service>;
const CLOSED = new Set(['done', 'cancelled']);
/** A push larger than this is refused (GitHub refuses files over 100 MB anyway). */
const DEFAULT_MAX_PUSH_BYTES = 100 * 1024 * 1024;

export interface GitGatewayDeps {
  tasks: Pick<TaskClient, 'get'>;
  github: Pick<GitHubClient, 'installationToken' | 'gitUrl'>;
  log: Logger;
  maxPushBytes?: number;
}

/** Where an agent clones a task's repository: the one place the gateway URL is put together. */
export function gatewayCloneUrl(gatewayUrl: string, taskId: string, repo: { owner: string; repo: string }): string {
  return `${gatewayUrl.replace(/\/+$/, '')}/${taskId}/${repo.owner}/${repo.repo}.git`;
}

interface Target {
  taskId: string;
  owner: string;
  repo: string;
  /** `info/refs`, `git-upload-pack` or `git-receive-pack`. */
  path: string;
  service: Service;
  record: TaskRecord;
}

export function gitGatewayRoutes(deps: GitGatewayDeps): RouteModule {
  return {
    name: 'git-gateway',
    mount(app) {
      app.use((req, res, next) => {
        if (req.path !== GIT_GATEWAY_PATH && !req.path.startsWith(`${GIT_GATEWAY_PATH}/`)) return next();
        handle(deps, req, res).catch((err: unknown) => {
          deps.log.error({ path: req.path, err: errorMessage(err) }, 'git gateway request failed');
          if (!res.headersSent) refuse(res, 502, 'the git gateway could not reach the repository; the serve log has the details');
          else res.destroy();
        });
      });
    },
  };
}

async function handle(deps: GitGatewayDeps, req: Request, res: Response): Promise<void> {
  const target = await resolveTarget(deps, req, res);
  if (target === undefined) return;
  const log = deps.log.child({ taskId: target.taskId, owner: target.owner, repo: target.repo, service: target.service });
  const push = target.service === 'git-receive-pack';
  const installationId = target.record.context.spec.source?.installationId;
  const { token } = await deps.github.installationToken(
    { owner: target.owner, repo: target.repo, ...(installationId === undefined ? {} : { installationId }) },
    { permissions: { contents: push ? 'write' : 'read' } },
  );
  const repository = `${deps.github.gitUrl}/${encodeURIComponent(target.owner)}/${encodeURIComponent(target.repo)}.git`;
  const upstream = new URL(`${repository}/${target.path}`);
  if (target.path === 'info/refs') upstream.searchParams.set('service', target.service);
  const auth = `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;

  if (target.path === 'info/refs' && push) return advertiseForPush(req, res, upstream, auth, log);
  if (target.path === 'git-receive-pack') return forwardPush(deps, target, req, res, upstream, { url: repository, authorization: auth }, log);
  // Fetches stream through untouched.
  const upstreamRes = await send(upstream, { method: req.method, headers: { ...forwardedHeaders(req.headers, true), authorization: auth } }, req);
  relay(upstreamRes, res);
  log.debug({ status: upstreamRes.statusCode }, 'git gateway fetch');
}

/** The task, repository and service of a request, or undefined once a refusal has been sent. */
async function resolveTarget(deps: GitGatewayDeps, req: Request, res: Response): Promise<Target | undefined> {
  const match = ROUTE.exec(req.path);
  const [taskId = '', owner = '', repo = '', path = ''] = match?.slice(1) ?? [];
  if (match === null || !TaskId.safeParse(taskId).success || !OwnerLogin.safeParse(owner).success || !RepositoryName.safeParse(repo).success) {
    refuse(res, 404, 'not a Stagegate repository URL: expected /git/<task>/<owner>/<repo>.git');
    return undefined;
  }
  const service = Service.safeParse(path === 'info/refs' ? req.query.service : path).data;
  if (service === undefined || req.method !== (path === 'info/refs' ? 'GET' : 'POST')) {
    refuse(res, 403, 'the Stagegate git gateway serves only smart HTTP fetches and pushes');
    return undefined;
  }
  let record: TaskRecord;
  try {
    record = await deps.tasks.get(taskId);
  } catch (err) {
    if (!isStagegateError(err, 'TASK_UNKNOWN')) throw err;
    refuse(res, 404, `Repository not found: there is no task ${taskId}`);
    return undefined;
  }
  const source = record.context.spec.source;
  if (source === undefined || source.owner.toLowerCase() !== owner.toLowerCase() || source.repo.toLowerCase() !== repo.toLowerCase()) {
    refuse(res, 404, `Repository not found: task ${taskId} does not work on ${owner}/${repo}`);
    return undefined;
  }
  if (CLOSED.has(record.state)) {
    refuse(res, 403, `task ${taskId} is ${record.state}: its repository is closed to agents`);
    return undefined;
  }
  return { taskId, owner: source.owner, repo: source.repo, path, service, record };
}

/** The receive-pack advertisement with `no-thin` added, so the push's pack can be read on its own. */
async function advertiseForPush(req: Request, res: Response, upstream: URL, auth: string, log: Logger): Promise<void> {
  const upstreamRes = await send(upstream, { method: 'GET', headers: { ...forwardedHeaders(req.headers, false), authorization: auth } });
  if (upstreamRes.statusCode !== 200) return relay(upstreamRes, res);
  const body = await readAll(upstreamRes, DEFAULT_MAX_PUSH_BYTES);
  let advertisement: Buffer;
  try {
    advertisement = addCapabilities(body, ['no-thin']);
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'git gateway could not read the receive-pack advertisement');
    return refuse(res, 502, 'the repository answered with something the git gateway cannot read');
  }
  res.status(200);
  copyResponseHeaders(upstreamRes.headers, res, ['content-encoding', 'content-length']);
  res.setHeader('content-length', advertisement.length);
  res.end(advertisement);
}

/** Reads the whole push, checks every update, and forwards it only if all of them may pass. */
async function forwardPush(deps: GitGatewayDeps, target: Target, req: Request, res: Response, upstream: URL, repository: Upstream, log: Logger): Promise<void> {
  const raw = await readAll(req, deps.maxPushBytes ?? DEFAULT_MAX_PUSH_BYTES).catch((err: unknown) => (err instanceof TooLarge ? undefined : Promise.reject(err)));
  if (raw === undefined) return refuse(res, 413, 'the push is larger than the git gateway accepts');
  let request;
  try {
    request = parseReceivePackRequest(req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw);
  } catch (err) {
    if (!(err instanceof PktLineError)) throw err;
    return refuse(res, 400, `not a git push: ${err.message}`);
  }
  const refused = await refusals(target, request.updates, request.pack, repository);
  if (refused.size > 0) {
    log.warn({ updates: request.updates, refused: Object.fromEntries(refused) }, 'git gateway refused a push');
    const report = request.updates.map((u) => ({ ref: u.ref, reason: refused.get(u.ref) ?? 'refused with the rest of the push' }));
    if (!request.capabilities.some((c) => c === 'report-status' || c === 'report-status-v2')) return refuse(res, 403, report.map((r) => `${r.ref}: ${r.reason}`).join('; '));
    res.status(200).setHeader('content-type', 'application/x-git-receive-pack-result').setHeader('cache-control', 'no-cache');
    res.end(rejectionReport(report, request.capabilities, `Stagegate refused this push: ${report.map((r) => `${r.ref}: ${r.reason}`).join('; ')}`));
    return;
  }
  const upstreamRes = await send(
    upstream,
    { method: 'POST', headers: { ...forwardedHeaders(req.headers, false), 'content-length': String(raw.length), authorization: repository.authorization } },
    raw,
  );
  relay(upstreamRes, res);
  log.info({ status: upstreamRes.statusCode, updates: request.updates.map((u) => `${u.ref} ${u.before.slice(0, 10)}..${u.after.slice(0, 10)}`) }, 'git gateway push forwarded');
}

/** Why each update may not pass (the task's own branch only; created or fast-forwarded, or replaced in a rebase update; never deleted; no secret added). */
async function refusals(target: Target, updates: readonly RefUpdate[], pack: Buffer, repository: Upstream): Promise<Map<string, string>> {
  const own = `refs/heads/${target.record.context.branch}`;
  const refused = new Map<string, string>();
  for (const u of updates) {
    if (u.ref !== own) refused.set(u.ref, `task ${target.taskId} may push only ${own}`);
    else if (u.after === ZERO_SHA) refused.set(u.ref, 'deleting the branch is not allowed');
  }
  if (refused.size > 0) return refused;
  // A rebase update replaces the branch; any other push only adds to it.
  const { state, context } = target.record;
  return refuseUnsafeUpdates(updates, pack, repository, { mayReplace: state === 'implementing' && context.update?.strategy === 'rebase' });
}

/** Request headers git's protocol needs upstream; never the caller's own authorization. */
function forwardedHeaders(headers: IncomingHttpHeaders, fetch: boolean): Record<string, string> {
  const out: Record<string, string> = { 'user-agent': `stagegate-git-gateway (${headers['user-agent'] ?? 'git'})` };
  const names = ['content-type', 'accept', ...(fetch ? ['content-encoding', 'accept-encoding', 'git-protocol', 'transfer-encoding', 'content-length'] : ['content-encoding'])];
  for (const name of names) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

const RESPONSE_HEADERS = ['content-type', 'content-encoding', 'content-length', 'cache-control', 'expires', 'pragma'];

function copyResponseHeaders(headers: IncomingHttpHeaders, res: Response, skip: readonly string[] = []): void {
  for (const name of RESPONSE_HEADERS) {
    const value = headers[name];
    if (typeof value === 'string' && !skip.includes(name)) res.setHeader(name, value);
  }
}

/** Streams the upstream answer back. Upstream's 401/403 (a token that cannot do this) is reported as the gateway's. */
function relay(upstreamRes: IncomingMessage, res: Response): void {
  const status = upstreamRes.statusCode ?? 502;
  if (status === 401) {
    upstreamRes.resume();
    return refuse(res, 502, 'GitHub refused the gateway\'s token for this repository');
  }
  res.status(status);
  copyResponseHeaders(upstreamRes.headers, res);
  upstreamRes.pipe(res);
}

function send(url: URL, options: { method: string; headers: Record<string, string> }, body?: NodeJS.ReadableStream | Buffer): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const upstream = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: options.method, headers: options.headers }, resolve);
    upstream.on('error', reject);
    if (body === undefined) upstream.end();
    else if (Buffer.isBuffer(body)) upstream.end(body);
    else body.pipe(upstream);
  });
}

class TooLarge extends Error {}

async function readAll(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    size += buf.length;
    if (size > limit) throw new TooLarge();
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** A refusal git shows the person: plain text, printed as `remote: …` lines. */
function refuse(res: Response, status: number, message: string): void {
  res.status(status).setHeader('content-type', 'text/plain; charset=utf-8');
  res.end(`${message}\n`);
}
