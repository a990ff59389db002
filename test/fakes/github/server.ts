/**
 * A loopback GitHub for tests, laid out like GitHub Enterprise: the REST API under
 * `<origin>/api/v3` (`url`, what GITHUB_API_URL points at) and git over smart HTTP at the
 * origin (`gitUrl`: `<gitUrl>/<owner>/<repo>.git`), plus the two GraphQL review-thread operations at
 * `<origin>/api/graphql` (`review-threads.ts`). It keeps state for the endpoints Stagegate
 * uses, backed by real bare repositories, and checks credentials as GitHub does: every API
 * request needs a user token, a current installation token scoped to the repository with the
 * permission the route needs, or (App endpoints) the App's JWT; git needs basic auth with a token.
 *
 * Every API request is recorded. A request to a route the fake does not have (or, in strict
 * mode, was not told to `allow`/`expect`) is answered 501 and listed in `unexpected`;
 * `assertNoUnexpected()` fails on those and on expectations not met. `failNext` answers a route's
 * next requests with an error instead (`rateLimitNext`: GitHub's primary rate limit).
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { actionRoutes } from './actions.js';
import { appRoutes, checkAppJwt, grants } from './app.js';
import { createBareRepo, resolveCommit } from './bare-repo.js';
import { addStatus, applyCheckRun, checkRoutes } from './checks.js';
import { collaboratorRoutes } from './collaborators.js';
import { commitFiles, contentRoutes } from './contents.js';
import { addDeploymentStatus, deploymentRoutes, type DeploymentStatusFields } from './deployments.js';
import { describePush, serveGitHttp } from './git-http.js';
import { addComment, addIssue, issueRoutes } from './issues.js';
import { pullRoutes } from './pulls.js';
import { refRoutes } from './refs.js';
import { reviewThreadRoutes } from './review-threads.js';
import { DOCS, HttpError, type Caller, type FakeUrls, type Route, type RouteContext, type RouteReply } from './routes.js';
import {
  FakeGitHubState,
  type FakeAnnotation,
  type FakeCheckRun,
  type FakeComment,
  type FakeDeploymentStatus,
  type FakeIssue,
  type FakeRepo,
  type FakeRun,
  type FakeStatus,
  type FakeWorkflow,
  type PushRecord,
  type RepoPermission,
  type TokenPermissions,
} from './state.js';

export const ROUTES: readonly Route[] = [...issueRoutes, ...collaboratorRoutes, ...pullRoutes, ...reviewThreadRoutes, ...checkRoutes, ...actionRoutes, ...deploymentRoutes, ...refRoutes, ...contentRoutes, ...appRoutes];

/** What an installation is granted when a test does not say: everything Stagegate could ask for. */
export const DEFAULT_INSTALLATION_PERMISSIONS: TokenPermissions = {
  contents: 'write',
  issues: 'write',
  pull_requests: 'write',
  checks: 'write',
  actions: 'write',
  deployments: 'write',
  statuses: 'write',
  metadata: 'read',
};

export interface FakeGitHubOptions {
  /** Tokens that act as a user (personal access tokens): token → login. */
  userTokens?: Record<string, string>;
  /** Be a GitHub App: JWTs must be signed with the private half of `publicKey` and carry `iss` = `id`. */
  app?: { id: number; slug?: string; publicKey: string | KeyObject; permissions?: TokenPermissions };
  /** Serve only routes that were `allow`ed or `expect`ed; anything else is unexpected. */
  strict?: boolean;
  /** Lifetime of installation tokens (default one hour, as GitHub's). */
  tokenTtlMs?: number;
}

export interface RecordedRequest {
  method: string;
  /** Below the API base, without the query. */
  path: string;
  /** `POST /repos/{owner}/{repo}/pulls`, as Octokit names routes; undefined when none matched. */
  route: string | undefined;
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  /** Login of the token's user, the installation's bot, or the App. */
  caller: string | undefined;
  callerKind: 'user' | 'installation' | 'app' | undefined;
  status: number;
  response: unknown;
}

export interface RecordedGitRequest {
  method: string;
  path: string;
  user: string | undefined;
  status: number;
}

export interface Failure {
  status: number;
  body?: Record<string, unknown>;
  headers?: Record<string, string> | (() => Record<string, string>);
  /** How many requests get it (default 1). */
  times?: number;
}

export interface AddRepoOptions {
  owner: string;
  repo: string;
  defaultBranch?: string;
  /** Files of the initial commit (path → content); default a README. */
  files?: Record<string, string>;
  private?: boolean;
  /** Install the App on it (default: when the fake is an App). */
  installed?: boolean;
}

export interface FakeGitHub {
  /** API base URL (GITHUB_API_URL). */
  url: string;
  /** Git base URL (GITHUB_GIT_URL; also what the API URL's origin gives). */
  gitUrl: string;
  state: FakeGitHubState;
  requests: RecordedRequest[];
  gitRequests: RecordedGitRequest[];
  pushes: PushRecord[];
  unexpected: string[];
  addRepo(options: AddRepoOptions): Promise<FakeRepo>;
  addUserToken(token: string, login: string): void;
  setPermission(owner: string, repo: string, login: string, permission: RepoPermission): void;
  addIssue(owner: string, repo: string, fields: { title: string; body?: string; user: string; labels?: string[] }): FakeIssue;
  addComment(owner: string, repo: string, issueNumber: number, user: string, body: string): FakeComment;
  /** Commits files (path → content, null deletes) on a branch (default: the default branch; a new one starts there); returns the commit. */
  commitFiles(owner: string, repo: string, files: Record<string, string | null>, options?: { branch?: string; message?: string }): Promise<string>;
  addWorkflow(owner: string, repo: string, workflow: { path: string; name?: string }): FakeWorkflow;
  completeRun(owner: string, repo: string, runId: number, conclusion?: string): FakeRun;
  /** Creates or updates the check run `name` on the commit `ref` names, as the `ci` App. */
  /** `app: 'github-actions'` with a `log` makes it an Actions job whose log the jobs API serves. */
  setCheck(
    owner: string,
    repo: string,
    ref: string,
    name: string,
    fields: {
      status?: FakeCheckRun['status'];
      conclusion?: NonNullable<FakeCheckRun['conclusion']>;
      output?: { title: string; summary: string; text?: string };
      annotations?: FakeAnnotation[];
      app?: string;
      log?: string;
    },
  ): Promise<FakeCheckRun>;
  setStatus(owner: string, repo: string, ref: string, context: string, state: FakeStatus['state'], description?: string): Promise<FakeStatus>;
  postDeploymentStatus(owner: string, repo: string, deploymentId: number, fields: DeploymentStatusFields): FakeDeploymentStatus;
  /** Makes every installation token handed out so far expired (401 from then on). */
  expireTokens(): void;
  /** The route must be requested (exactly `times` when given, else at least once); allowed in strict mode. */
  expect(route: string, times?: number): void;
  /** The routes may be requested (strict mode). */
  allow(...routes: string[]): void;
  /** Answers the route's next request(s) (`*`: any route's) with this failure. */
  failNext(route: string, failure: Failure): void;
  /** GitHub's primary rate limit on the route's next request: 403, remaining 0, reset `resetInS` ahead. */
  rateLimitNext(route: string, resetInS?: number): void;
  requestsTo(route: string, where?: (r: RecordedRequest) => boolean): RecordedRequest[];
  waitForRequest(route: string, where?: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  waitForPush(where?: (p: PushRecord) => boolean, timeoutMs?: number): Promise<PushRecord>;
  assertNoUnexpected(): void;
  close(): Promise<void>;
}

const GREEDY = new Set(['ref', 'branch', 'path']);

interface CompiledRoute {
  route: Route;
  id: string;
  pattern: RegExp;
  names: string[];
  literals: number;
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  let literals = 0;
  const source = route.path
    .split('/')
    .map((segment) => {
      const param = /^\{(\w+)\}$/.exec(segment);
      if (param === null) {
        literals++;
        return segment.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
      }
      names.push(param[1] ?? '');
      return GREEDY.has(param[1] ?? '') ? '(.+?)' : '([^/]+)';
    })
    .join('/');
  return { route, id: `${route.method} ${route.path}`, pattern: new RegExp(`^${source}$`), names, literals };
}

const COMPILED = ROUTES.map(compile).sort((a, b) => b.literals - a.literals);

export async function startFakeGitHub(options: FakeGitHubOptions = {}): Promise<FakeGitHub> {
  const state = new FakeGitHubState();
  if (options.tokenTtlMs !== undefined) state.tokenTtlMs = options.tokenTtlMs;
  for (const [token, login] of Object.entries(options.userTokens ?? {})) state.tokens.set(token, { kind: 'user', token, login: state.user(login).login });
  if (options.app !== undefined) {
    const publicKey = createPublicKey(options.app.publicKey).export({ type: 'spki', format: 'pem' }).toString();
    state.app = { id: options.app.id, slug: options.app.slug ?? 'stagegate', publicKey };
  }
  const root = await mkdtemp(join(tmpdir(), 'fake-github-'));
  const requests: RecordedRequest[] = [];
  const gitRequests: RecordedGitRequest[] = [];
  const unexpected: string[] = [];
  const allowed = new Set<string>();
  const expectations = new Map<string, number | undefined>();
  const failures = new Map<string, Failure[]>();
  const events = new EventEmitter();
  events.setMaxListeners(100);
  let urls: FakeUrls = { api: '', web: '' };

  const takeFailure = (id: string): Failure | undefined => {
    for (const key of [id, '*']) {
      const queue = failures.get(key);
      const next = queue?.[0];
      if (queue === undefined || next === undefined) continue;
      const left = (next.times ?? 1) - 1;
      if (left <= 0) queue.shift();
      else queue[0] = { ...next, times: left };
      return next;
    }
    return undefined;
  };

  async function handleApi(req: IncomingMessage, url: URL, path: string): Promise<{ reply: RouteReply; record: RecordedRequest }> {
    const method = req.method ?? 'GET';
    const record: RecordedRequest = { method, path, route: undefined, params: {}, query: Object.fromEntries(url.searchParams), body: undefined, caller: undefined, callerKind: undefined, status: 0, response: undefined };
    const text = await readBody(req);
    try {
      record.body = text === '' ? undefined : JSON.parse(text);
    } catch {
      return { reply: { status: 400, body: { message: 'Problems parsing JSON', documentation_url: DOCS } }, record };
    }
    let match: { compiled: CompiledRoute; params: Record<string, string> } | undefined;
    for (const compiled of COMPILED) {
      if (compiled.route.method !== method) continue;
      const m = compiled.pattern.exec(path);
      if (m === null) continue;
      match = { compiled, params: Object.fromEntries(compiled.names.map((name, i) => [name, decodeURIComponent(m[i + 1] ?? '')])) };
      break;
    }
    if (match === undefined || (options.strict === true && !allowed.has(match.compiled.id))) {
      unexpected.push(`${method} ${path}${match === undefined ? ' (no such route)' : ` (${match.compiled.id} not allowed)`}`);
      return { reply: { status: 501, body: { message: `fake GitHub: ${method} ${path} was not expected`, documentation_url: DOCS } }, record };
    }
    const { compiled, params } = match;
    record.route = compiled.id;
    record.params = params;
    const failure = takeFailure(compiled.id);
    if (failure !== undefined) {
      const headers = typeof failure.headers === 'function' ? failure.headers() : (failure.headers ?? {});
      return { reply: { status: failure.status, body: failure.body ?? { message: `HTTP ${failure.status}` }, headers }, record };
    }
    try {
      const caller = authenticate(req.headers.authorization, compiled.route);
      record.caller = caller.login;
      record.callerKind = caller.kind;
      const repo = params.owner !== undefined && params.repo !== undefined ? state.repo(params.owner, params.repo) : undefined;
      if (params.owner !== undefined && params.repo !== undefined && repo === undefined) throw notFoundError();
      if (repo !== undefined) authorize(caller, repo, compiled.route);
      const ctx: RouteContext = { state, urls, params, query: url.searchParams, body: record.body, caller, repo: repo ?? NO_REPO, url };
      return { reply: await compiled.route.handle(ctx), record };
    } catch (err) {
      if (err instanceof HttpError) return { reply: { status: err.status, body: err.body, headers: err.headers }, record };
      unexpected.push(`${method} ${path} failed in the fake: ${err instanceof Error ? err.stack : String(err)}`);
      return { reply: { status: 500, body: { message: `fake GitHub failed: ${err instanceof Error ? err.message : String(err)}` } }, record };
    }
  }

  function authenticate(header: string | undefined, route: Route): Caller {
    const match = /^(token|bearer)\s+(\S+)$/i.exec(header ?? '');
    if (match === null) throw new HttpError(401, { message: 'Requires authentication', documentation_url: DOCS, status: '401' });
    const credential = match[2] ?? '';
    if (route.auth === 'app') {
      const problem = credential.split('.').length === 3 ? checkAppJwt(credential, state.app) : 'A JSON web token could not be decoded';
      if (problem !== undefined || state.app === undefined) throw new HttpError(401, { message: problem ?? 'no App', documentation_url: DOCS, status: '401' });
      return { kind: 'app', appId: state.app.id, login: state.app.slug };
    }
    const token = state.tokens.get(credential);
    if (token === undefined || (token.kind === 'installation' && token.expiresAt.getTime() <= Date.now())) {
      throw new HttpError(401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });
    }
    return token;
  }

  function authorize(caller: Caller, repo: FakeRepo, route: Route) {
    if (caller.kind === 'user' && route.appsOnly === true) throw new HttpError(403, { message: 'You must authenticate via a GitHub App.', documentation_url: DOCS, status: '403' });
    if (caller.kind !== 'installation') return;
    if (!caller.repositories.includes(`${repo.owner}/${repo.name}`.toLowerCase())) throw notFoundError();
    const needed = route.permission;
    if (needed !== undefined && !needed.names.some((name) => grants(caller.permissions, name, needed.level))) {
      throw new HttpError(403, { message: 'Resource not accessible by integration', documentation_url: DOCS, status: '403' });
    }
  }

  async function handleGit(req: IncomingMessage, res: ServerResponse, url: URL, owner: string, name: string, rest: string) {
    const record: RecordedGitRequest = { method: req.method ?? 'GET', path: url.pathname, user: undefined, status: 0 };
    gitRequests.push(record);
    const refuse = (status: number, message: string, headers: Record<string, string> = {}) => {
      record.status = status;
      req.resume();
      res.writeHead(status, { 'content-type': 'text/plain', ...headers });
      res.end(`${message}\n`);
    };
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const [user = '', password = ''] = basic === null ? [] : splitOnce(Buffer.from(basic[1] ?? '', 'base64').toString('utf8'), ':');
    const token = state.tokens.get(password);
    if (token === undefined || (token.kind === 'installation' && token.expiresAt.getTime() <= Date.now())) {
      refuse(401, 'Invalid username or token. Password authentication is not supported for Git operations.', { 'www-authenticate': 'Basic realm="GitHub"' });
      return;
    }
    record.user = token.login;
    const repo = state.repo(owner, name);
    const push = url.searchParams.get('service') === 'git-receive-pack' || rest === '/git-receive-pack';
    if (repo === undefined || (token.kind === 'installation' && !token.repositories.includes(`${repo.owner}/${repo.name}`.toLowerCase()))) {
      refuse(404, 'Repository not found.');
      return;
    }
    if (token.kind === 'installation' && !grants(token.permissions, 'contents', push ? 'write' : 'read')) {
      refuse(403, `Permission to ${repo.owner}/${repo.name}.git denied to ${token.login}.`);
      return;
    }
    const cgi = { root, pathInfo: `/${repo.owner}/${repo.name}.git${rest}`, query: url.search.slice(1), remoteUser: user || token.login };
    await serveGitHttp(req, res, cgi, async ({ commands }) => {
      record.status = res.statusCode;
      if (commands.length === 0) return;
      const pushRecord: PushRecord = { owner: repo.owner, repo: repo.name, user: token.login, updates: await describePush(repo.dir, commands) };
      state.pushes.push(pushRecord);
      events.emit('push', pushRecord);
    });
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', urls.web);
    const git = /^\/([^/]+)\/([^/]+?)\.git(\/.*)$/.exec(url.pathname);
    if (!url.pathname.startsWith('/api/v3/') && git !== null) {
      handleGit(req, res, url, decodeURIComponent(git[1] ?? ''), decodeURIComponent(git[2] ?? ''), git[3] ?? '').catch((err: unknown) => {
        unexpected.push(`git ${url.pathname} failed in the fake: ${String(err)}`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
      return;
    }
    const path = url.pathname.startsWith('/api/v3/') ? url.pathname.slice('/api/v3'.length) : url.pathname;
    handleApi(req, url, path).then(({ reply, record }) => {
      record.status = reply.status;
      record.response = reply.body ?? reply.text;
      requests.push(record);
      const type = reply.text !== undefined ? 'text/plain; charset=utf-8' : reply.body !== undefined ? 'application/json; charset=utf-8' : undefined;
      res.writeHead(reply.status, { ...(type === undefined ? {} : { 'content-type': type }), 'x-github-request-id': `FAKE:${requests.length}`, ...reply.headers });
      res.end(reply.text ?? (reply.body === undefined ? undefined : JSON.stringify(reply.body)));
      events.emit('request', record);
    }, (err: unknown) => {
      unexpected.push(`${req.method ?? 'GET'} ${path} failed in the fake: ${String(err)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  urls = { api: `http://127.0.0.1:${port}/api/v3`, web: `http://127.0.0.1:${port}` };

  const repoOrThrow = (owner: string, name: string): FakeRepo => {
    const repo = state.repo(owner, name);
    if (repo === undefined) throw new Error(`fake GitHub has no repository ${owner}/${name}`);
    return repo;
  };
  const waitFor = <T>(event: string, what: string, found: T | undefined, match: (value: T) => boolean, timeoutMs: number): Promise<T> => {
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const on = (value: T) => {
        if (!match(value)) return;
        clearTimeout(timer);
        events.off(event, on);
        resolve(value);
      };
      const timer = setTimeout(() => {
        events.off(event, on);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      events.on(event, on);
    });
  };
  const requestsTo = (route: string, where: (r: RecordedRequest) => boolean = () => true) => requests.filter((r) => r.route === route && where(r));

  return {
    url: urls.api,
    gitUrl: urls.web,
    state,
    requests,
    gitRequests,
    pushes: state.pushes,
    unexpected,
    async addRepo({ owner, repo: name, defaultBranch = 'main', files = { 'README.md': `# ${name}\n` }, private: isPrivate = false, installed = state.app !== undefined }) {
      const dir = join(root, owner, `${name}.git`);
      await createBareRepo(dir, defaultBranch, files);
      state.user(owner);
      let installationId: number | undefined;
      if (installed) {
        const existing = [...state.installations.values()].find((i) => i.account.toLowerCase() === owner.toLowerCase());
        installationId = existing?.id ?? state.nextId();
        if (existing === undefined) state.installations.set(installationId, { id: installationId, account: owner, permissions: options.app?.permissions ?? DEFAULT_INSTALLATION_PERMISSIONS });
      }
      const repo: FakeRepo = {
        id: state.nextId(),
        owner,
        name,
        defaultBranch,
        dir,
        private: isPrivate,
        installationId,
        collaborators: new Map(),
        labels: new Map(),
        issues: new Map(),
        nextNumber: 1,
        comments: [],
        reviews: [],
        reviewComments: [],
        checkRuns: [],
        statuses: [],
        workflows: [],
        runs: [],
        deployments: [],
        deploymentStatuses: [],
      };
      state.repos.set(`${owner}/${name}`.toLowerCase(), repo);
      return repo;
    },
    addUserToken(token, login) {
      state.tokens.set(token, { kind: 'user', token, login: state.user(login).login });
    },
    setPermission(owner, name, login, permission) {
      repoOrThrow(owner, name).collaborators.set(state.user(login).login.toLowerCase(), permission);
    },
    addIssue: (owner, name, fields) => addIssue({ state }, repoOrThrow(owner, name), { ...fields, body: fields.body ?? null }),
    addComment: (owner, name, issueNumber, user, body) => addComment({ state }, repoOrThrow(owner, name), issueNumber, user, body),
    commitFiles(owner, name, files, { branch, message = 'Change files' } = {}) {
      const repo = repoOrThrow(owner, name);
      return commitFiles(repo.dir, branch ?? repo.defaultBranch, repo.defaultBranch, files, message);
    },
    addWorkflow(owner, name, { path, name: title }) {
      const workflow = { id: state.nextId(), path: path.includes('/') ? path : `.github/workflows/${path}`, name: title ?? path };
      repoOrThrow(owner, name).workflows.push(workflow);
      return workflow;
    },
    completeRun(owner, name, runId, conclusion = 'success') {
      const run = repoOrThrow(owner, name).runs.find((r) => r.id === runId);
      if (run === undefined) throw new Error(`fake GitHub has no run ${runId} in ${owner}/${name}`);
      Object.assign(run, { status: 'completed', conclusion, updatedAt: state.now() });
      return run;
    },
    async setCheck(owner, name, ref, checkName, fields) {
      const repo = repoOrThrow(owner, name);
      const sha = await resolveCommit(repo.dir, ref);
      if (sha === undefined) throw new Error(`fake GitHub: ${ref} names no commit in ${owner}/${name}`);
      const app = fields.app ?? 'ci';
      let run = repo.checkRuns.find((r) => r.headSha === sha && r.name === checkName && r.app === app);
      if (run === undefined) {
        run = { id: state.nextId(), name: checkName, headSha: sha, status: 'queued', conclusion: null, startedAt: null, completedAt: null, detailsUrl: null, externalId: null, output: { title: null, summary: null, text: null }, app, annotations: [], log: null };
        repo.checkRuns.push(run);
      }
      const { annotations, log, app: _app, ...apply } = fields;
      applyCheckRun(state, run, apply);
      if (annotations !== undefined) run.annotations = annotations;
      if (log !== undefined) run.log = log;
      return run;
    },
    async setStatus(owner, name, ref, context, statusState, description) {
      const repo = repoOrThrow(owner, name);
      const sha = await resolveCommit(repo.dir, ref);
      if (sha === undefined) throw new Error(`fake GitHub: ${ref} names no commit in ${owner}/${name}`);
      return addStatus(state, repo, sha, { state: statusState, context, description: description ?? null, creator: 'ci' });
    },
    postDeploymentStatus(owner, name, deploymentId, fields) {
      const repo = repoOrThrow(owner, name);
      const deployment = repo.deployments.find((d) => d.id === deploymentId);
      if (deployment === undefined) throw new Error(`fake GitHub has no deployment ${deploymentId} in ${owner}/${name}`);
      return addDeploymentStatus(state, repo, deployment, 'ci', fields);
    },
    expireTokens() {
      for (const token of state.tokens.values()) if (token.kind === 'installation') token.expiresAt = new Date(0);
    },
    expect(route, times) {
      allowed.add(route);
      expectations.set(route, times);
    },
    allow(...routes) {
      for (const route of routes) allowed.add(route);
    },
    failNext(route, failure) {
      failures.set(route, [...(failures.get(route) ?? []), failure]);
    },
    rateLimitNext(route, resetInS = 1) {
      failures.set(route, [
        ...(failures.get(route) ?? []),
        {
          status: 403,
          body: { message: 'API rate limit exceeded for installation. If you reach out to GitHub Support for help, please include the request ID.', documentation_url: DOCS, status: '403' },
          headers: () => ({
            'x-ratelimit-limit': '5000',
            'x-ratelimit-remaining': '0',
            'x-ratelimit-used': '5000',
            'x-ratelimit-resource': 'core',
            'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + resetInS),
          }),
        },
      ]);
    },
    requestsTo,
    waitForRequest: (route, where = () => true, timeoutMs = 15_000) =>
      waitFor<RecordedRequest>('request', `a request to ${route}`, requestsTo(route, where)[0], (r) => r.route === route && where(r), timeoutMs),
    waitForPush: (where = () => true, timeoutMs = 15_000) => waitFor<PushRecord>('push', 'a git push', state.pushes.find(where), where, timeoutMs),
    assertNoUnexpected() {
      const problems = [...unexpected];
      for (const [route, times] of expectations) {
        const count = requestsTo(route).length;
        if (times === undefined ? count === 0 : count !== times) problems.push(`${route} expected ${times ?? 'at least 1'} time(s), got ${count}`);
      }
      if (problems.length > 0) throw new Error(`fake GitHub saw what it did not expect:\n${problems.join('\n')}`);
    },
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(root, { recursive: true, force: true });
    },
  };
}

const notFoundError = () => new HttpError(404, { message: 'Not Found', documentation_url: DOCS, status: '404' });

/** Stands in for `ctx.repo` on routes without `{owner}/{repo}`; any use is a bug in the fake. */
const NO_REPO: FakeRepo = new Proxy({} as FakeRepo, {
  get() {
    throw new Error('this route has no {owner}/{repo}');
  },
});

function splitOnce(text: string, separator: string): [string, string] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, ''] : [text.slice(0, at), text.slice(at + separator.length)];
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
