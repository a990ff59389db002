/**
 * The one GitHub REST client: Octokit with the retry and throttling plugins, reached only through
 * `config.apiUrl` (github.com, GitHub Enterprise, or a test's fake).
 *
 * Auth is a configured token, or a GitHub App: the App's JWT serves only App endpoints (the
 * installation look-up and token minting); everything else goes through a per-repository client
 * whose installation token is scoped to that one repository with `INSTALLATION_PERMISSIONS`.
 *
 * Every failure leaves as StagegateError('GITHUB_HTTP') naming status, method and path, with the
 * same facts in `details` (see `gitHubStatusOf`). Rate limits are waited out per GitHub's reset
 * time or Retry-After a bounded number of times, each logged; 5xx and network failures are retried
 * by the retry plugin. Octokit's own log lines go to pino without headers, so no token is logged.
 * No request carries a configured secret's value in its parameters (comments, pull request and
 * review bodies, titles): `redact` replaces them before the request is made.
 */
import Bottleneck from 'bottleneck';
import { createAppAuth } from '@octokit/auth-app';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import { z } from 'zod';
import type { GitHubConfig } from '../config.js';
import { StagegateError, errorMessage, isStagegateError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseAt } from '../parse.js';
import { createSecretRedactor, secretValuesOf, type RedactSecrets } from '../security/redact-secrets.js';
import {
  INSTALLATION_PERMISSIONS,
  createInstallationTokenCache,
  readPrivateKey,
  type InstallationPermissions,
  type RepositoryToken,
} from './auth.js';

export const GitHubOctokit = Octokit.plugin(retry, throttling);
export type GitHubOctokit = InstanceType<typeof GitHubOctokit>;

export interface RepositoryRef {
  owner: string;
  repo: string;
  /** The App's installation on the repository; looked up (and remembered) when absent. */
  installationId?: number;
}

export interface RepositoryClientOptions {
  /** Permissions other than `INSTALLATION_PERMISSIONS` for this client (App mode only). */
  permissions?: InstallationPermissions;
}

export interface GitHubClient {
  readonly authMode: 'token' | 'app';
  readonly apiUrl: string;
  /** Where git clones and pushes (`gitRemoteUrl`). */
  readonly gitUrl: string;
  /** Token mode: the client for everything. App mode: the App's own client (JWT), for App endpoints only. */
  readonly octokit: GitHubOctokit;
  /** The client for one repository: the token's client, or one on a scoped installation token. */
  forRepository(ref: RepositoryRef, options?: RepositoryClientOptions): Promise<GitHubOctokit>;
  /** A token for git over HTTPS (`x-access-token:<token>`): the configured token, or a scoped installation token. */
  installationToken(ref: RepositoryRef, options?: RepositoryClientOptions): Promise<RepositoryToken>;
  /** `<gitUrl>/<owner>/<repo>.git`, without credentials. */
  gitRemoteUrl(ref: RepositoryRef): string;
}

export interface GitHubClientOptions {
  /** Times a rate-limited request is retried after waiting (default 3). */
  rateLimitRetries?: number;
  /** Longest wait for a rate limit to reset, in seconds; a longer one fails at once (default 900). */
  maxRateLimitWaitS?: number;
  /** Retries of 5xx and network failures (default 3, backing off 1, 4, 9 s). */
  retries?: number;
  /** The process's configured secrets, kept out of every request; default: the GitHub credentials in `config`. */
  redact?: RedactSecrets;
}

/** Request options that are Octokit's own, not what is sent to GitHub. */
const OCTOKIT_OPTIONS = new Set(['method', 'url', 'baseUrl', 'headers', 'request', 'mediaType']);

/** Octokit writes 1 s apart (3 s for ones that notify) unless `paceWrites` is off: then these unpaced groups. */
let unpaced: { write: Bottleneck.Group; notifications: Bottleneck.Group; search: Bottleneck.Group } | undefined;

export function createGitHubClient(config: GitHubConfig, log: Logger, options: GitHubClientOptions = {}): GitHubClient {
  const githubLog = log.child({ component: 'github' });
  const apiUrl = config.apiUrl;
  const redact = options.redact ?? createSecretRedactor(secretValuesOf({ github: config }));
  const build = (auth: Record<string, unknown>) => {
    const octokit = new GitHubOctokit({
      baseUrl: apiUrl,
      userAgent: 'stagegate',
      log: octokitLog(githubLog),
      retry: { retries: options.retries ?? 3, doNotRetry: [400, 401, 403, 404, 405, 409, 410, 422, 429, 451, 501] },
      throttle: throttleOptions(config, githubLog, options),
      ...auth,
    });
    octokit.hook.before('request', (requestOptions) => {
      for (const [key, value] of Object.entries(requestOptions)) if (!OCTOKIT_OPTIONS.has(key)) requestOptions[key] = redact(value);
    });
    return octokit;
  };

  if (config.appId === undefined || config.privateKey === undefined) {
    const octokit = build(config.token === undefined ? {} : { auth: config.token });
    wrapErrors(octokit, apiUrl);
    return {
      authMode: 'token',
      apiUrl,
      gitUrl: config.gitUrl,
      octokit,
      forRepository: async () => octokit,
      async installationToken(ref) {
        if (config.token === undefined) {
          throw new StagegateError('CONFIG_INVALID', `no GitHub credentials for git on ${ref.owner}/${ref.repo}: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY`);
        }
        return { token: config.token, expiresAt: null };
      },
      gitRemoteUrl: (ref) => remoteUrl(config.gitUrl, ref),
    };
  }

  const appId = config.appId;
  const app = build({ authStrategy: createAppAuth, auth: { appId, privateKey: readPrivateKey(config.privateKey) } });
  wrapErrors(app, apiUrl);

  const installations = new Map<string, Promise<number>>();
  const installationOf = (ref: RepositoryRef): Promise<number> => {
    if (ref.installationId !== undefined) return Promise.resolve(ref.installationId);
    const key = `${ref.owner}/${ref.repo}`.toLowerCase();
    let found = installations.get(key);
    if (found === undefined) {
      found = app.request('GET /repos/{owner}/{repo}/installation', { owner: ref.owner, repo: ref.repo }).then(
        ({ data }) => parseAt(InstallationReply, data, `GitHub installation of ${ref.owner}/${ref.repo}`).id,
      );
      found.catch(() => installations.delete(key));
      installations.set(key, found);
    }
    return found;
  };
  const tokens = createInstallationTokenCache(({ installationId, repository, permissions }) =>
    app
      .request('POST /app/installations/{installation_id}/access_tokens', { installation_id: installationId, repositories: [repository], permissions })
      .then(({ data }) => data),
  );
  const tokenFor = async (ref: RepositoryRef, permissions: InstallationPermissions, refresh = false) => {
    const installationId = await installationOf(ref);
    const token = await tokens.get({ installationId, owner: ref.owner, repo: ref.repo, permissions }, refresh);
    githubLog.debug({ owner: ref.owner, repo: ref.repo, installationId, expiresAt: token.expiresAt, refresh }, 'installation token ready');
    return token;
  };

  const clients = new Map<string, GitHubOctokit>();
  return {
    authMode: 'app',
    apiUrl,
    gitUrl: config.gitUrl,
    octokit: app,
    async forRepository(ref, { permissions = INSTALLATION_PERMISSIONS } = {}) {
      await installationOf(ref);
      const key = `${ref.owner}/${ref.repo}/${JSON.stringify(permissions)}`.toLowerCase();
      let octokit = clients.get(key);
      if (octokit === undefined) {
        const client = build({});
        // A 401 means the token was revoked or lapsed early: mint a new one and try once more.
        client.hook.wrap('request', async (request, requestOptions) => {
          requestOptions.headers.authorization = `token ${(await tokenFor(ref, permissions)).token}`;
          try {
            return await request(requestOptions);
          } catch (err) {
            if (statusOf(err) !== 401) throw err;
            requestOptions.headers.authorization = `token ${(await tokenFor(ref, permissions, true)).token}`;
            return request(requestOptions);
          }
        });
        wrapErrors(client, apiUrl);
        clients.set(key, client);
        octokit = client;
      }
      return octokit;
    },
    installationToken: (ref, { permissions = INSTALLATION_PERMISSIONS } = {}) => tokenFor(ref, permissions),
    gitRemoteUrl: (ref) => remoteUrl(config.gitUrl, ref),
  };
}

const InstallationReply = z.object({ id: z.number().int().positive() });

/** Status of a GITHUB_HTTP error (or of a raw Octokit error); undefined for anything else, or no response at all. */
export function gitHubStatusOf(err: unknown): number | undefined {
  if (isStagegateError(err, 'GITHUB_HTTP')) {
    const status = err.details?.status;
    return typeof status === 'number' ? status : undefined;
  }
  return statusOf(err);
}

/** Every item of a paginated list (`octokit.paginate.iterator(…, { per_page: 100 })`), failing past `maxItems`. */
export async function listAll<T>(pages: AsyncIterable<{ data: T[] }>, what: string, maxItems = 10_000): Promise<T[]> {
  const items: T[] = [];
  for await (const page of pages) {
    items.push(...page.data);
    if (items.length > maxItems) {
      throw new StagegateError('GITHUB_HTTP', `GitHub list ${what} has more than ${maxItems} items; stopped reading`, { details: { what, maxItems } });
    }
  }
  return items;
}

function remoteUrl(gitUrl: string, ref: RepositoryRef): string {
  return `${gitUrl}/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}.git`;
}

/** Registered after the plugins, so it sees the last error once retries and rate-limit waits are done. */
function wrapErrors(octokit: GitHubOctokit, apiUrl: string) {
  octokit.hook.error('request', (err, requestOptions) => {
    throw toGitHubError(err, requestOptions.method, requestUrlOf(err) ?? requestOptions.url, apiUrl);
  });
}

function toGitHubError(err: unknown, method: string, url: string, apiUrl: string): Error {
  if (isStagegateError(err)) return err;
  const path = pathOf(url, apiUrl);
  const status = statusOf(err);
  const answered = hasResponse(err);
  const data = responseDataOf(err);
  const reason = typeof data?.message === 'string' ? data.message : errorMessage(err);
  const details: Record<string, unknown> = { status: answered ? status : undefined, method, path };
  if (Array.isArray(data?.errors)) details.errors = data.errors;
  if (typeof data?.documentation_url === 'string') details.documentationUrl = data.documentation_url;
  // Octokit reports a network failure as status 500 without a response.
  const what = answered && status !== undefined ? `GitHub ${status}` : status !== undefined ? 'GitHub unreachable' : 'GitHub request failed';
  return new StagegateError('GITHUB_HTTP', `${what} on ${method} ${path}: ${reason}`, { cause: err, details });
}

/** The path below the API base, without the query string (which may carry page cursors, never credentials). */
function pathOf(url: string, apiUrl: string): string {
  const base = new URL(apiUrl).pathname.replace(/\/+$/, '');
  const pathname = new URL(url, `${apiUrl}/`).pathname;
  return base !== '' && pathname.startsWith(base) ? pathname.slice(base.length) || '/' : pathname;
}

/** The expanded URL Octokit sent (the hook's options hold the route template). */
function requestUrlOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('request' in err)) return undefined;
  const request = err.request;
  if (typeof request !== 'object' || request === null || !('url' in request)) return undefined;
  return typeof request.url === 'string' ? request.url : undefined;
}

function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('status' in err)) return undefined;
  return typeof err.status === 'number' ? err.status : undefined;
}

function hasResponse(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'response' in err && typeof err.response === 'object' && err.response !== null;
}

function responseDataOf(err: unknown): Record<string, unknown> | undefined {
  if (typeof err !== 'object' || err === null || !('response' in err)) return undefined;
  const response = err.response;
  if (typeof response !== 'object' || response === null || !('data' in response)) return undefined;
  const data = response.data;
  return typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
}

function throttleOptions(config: GitHubConfig, log: Logger, options: GitHubClientOptions) {
  const retries = options.rateLimitRetries ?? 3;
  const maxWaitS = options.maxRateLimitWaitS ?? 900;
  const onLimit = (kind: string) => (retryAfter: number, request: { method: string; url: string }, _octokit: unknown, retryCount: number) => {
    const willRetry = retryCount < retries && retryAfter <= maxWaitS;
    log.warn({ kind, method: request.method, route: request.url, retryAfterS: retryAfter, retryCount, willRetry }, 'GitHub rate limit hit');
    return willRetry;
  };
  if (!config.paceWrites) {
    unpaced ??= {
      write: new Bottleneck.Group({ maxConcurrent: null, minTime: 0 }),
      notifications: new Bottleneck.Group({ maxConcurrent: null, minTime: 0 }),
      search: new Bottleneck.Group({ maxConcurrent: null, minTime: 0 }),
    };
  }
  return {
    onRateLimit: onLimit('primary'),
    onSecondaryRateLimit: onLimit('secondary'),
    ...(config.paceWrites ? {} : unpaced),
  };
}

/**
 * Octokit's log calls → pino. Request lines (info) and request failures (error: the caller gets
 * the error and logs it where it is handled) go to debug; only the message text is kept.
 */
function octokitLog(log: Logger) {
  const extra = (info: unknown) => (info instanceof Error ? { err: info.message } : {});
  return {
    debug: (message: string) => log.trace(String(message)),
    info: (message: string) => log.debug(String(message)),
    warn: (message: string, info?: unknown) => log.warn(extra(info), String(message)),
    error: (message: string, info?: unknown) => log.debug(extra(info), String(message)),
  };
}
