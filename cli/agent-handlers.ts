/** Builds the job handler of one role from the configuration: the wiring of agents/. */
import { resolve } from 'node:path';
import type { JobHandler } from '../core/bus/job-worker.js';
import type { AgentRole } from '../core/bus/messages.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { createGitHubClient } from '../core/github/client.js';
import { createModelClient } from '../core/model/client.js';
import { createProcessModelLimiter, modelFor } from '../core/model/openai-client.js';
import { createTurnClient } from '../core/model/turn.js';
import { createSandbox, detectBwrap, type Sandbox } from '../core/sandbox/index.js';
import { createPlannerHandler } from '../agents/planner/worker.js';
import { createCoderHandler } from '../agents/coder/worker.js';
import { validateApprovalPatterns } from '../agents/coder/harness/tools/index.js';
import { createReviewerHandler } from '../agents/reviewer/worker.js';
import { createDeployerHandler } from '../agents/deployer/worker.js';


/**
 * The sandbox is made at the first job that needs it, so a worker without bwrap still starts
 * (its start line says why its jobs will fail) and a failed attempt is tried again next job.
 */
function lazySandbox(config: Readonly<Config>, log: Logger, configFile: string | undefined): () => Promise<Sandbox> {
  let sandbox: Promise<Sandbox> | undefined;
  return () =>
    (sandbox ??= createSandbox({ allowUnsandboxed: config.coder.allowUnsandboxed, log, hiddenPaths: secretPaths(config, configFile) }).catch((err: unknown) => {
      sandbox = undefined;
      throw err;
    }));
}

/**
 * Files a sandboxed command must not read although the root is visible: the config file (it may
 * hold keys), a private key given as a path, and the work directory (other tasks' clones; the
 * task's own worktree is mounted again over it).
 */
function secretPaths(config: Readonly<Config>, configFile: string | undefined): string[] {
  const key = config.github.privateKey;
  const keyFile = key !== undefined && !key.includes('-----BEGIN') ? key : undefined;
  return [config.workDir, ...[configFile, keyFile].filter((p): p is string => p !== undefined).map((p) => resolve(p))];
}

/**
 * The configuration an agent of `role` runs with: the model key only where a model is asked,
 * GitHub credentials only for the deployer, and never Slack, webhook or API secrets.
 */
export function configForRole(role: AgentRole, config: Readonly<Config>): Readonly<Config> {
  const { apiKey: _apiKey, ...model } = config.model;
  const { token: _token, privateKey: _privateKey, webhookSecret: _webhookSecret, ...github } = config.github;
  const { botToken: _botToken, signingSecret: _signingSecret, appToken: _appToken, ...slack } = config.slack;
  return Object.freeze({
    ...config,
    model: usesModel(role) ? config.model : model,
    github: role === 'deployer' ? { ...github, ...pick(config.github, 'token', 'privateKey') } : github,
    slack,
    api: { tokens: [] },
  });
}

/** Every role but the deployer asks a model. */
function usesModel(role: AgentRole): boolean {
  return role !== 'deployer';
}

/** The model a role's jobs spend their tokens on, for its results to name (none for the deployer). */
export function modelOfRole(role: AgentRole, config: Readonly<Config>): string | undefined {
  return usesModel(role) ? modelFor(config.model, role) : undefined;
}

function pick<T extends object, K extends keyof T>(value: T, ...keys: K[]): Partial<Pick<T, K>> {
  return Object.fromEntries(keys.filter((k) => value[k] !== undefined).map((k) => [k, value[k]])) as Partial<Pick<T, K>>;
}

/** The line a coder or reviewer worker prints at start about where commands will run. */
export async function describeSandbox(config: Readonly<Config>): Promise<string> {
  const bwrap = await detectBwrap();
  if (bwrap.usable) return `commands run inside bubblewrap (${bwrap.path}): read-only root, no network, no secrets`;
  return config.coder.allowUnsandboxed
    ? `WARNING: bwrap is not usable (${bwrap.reason}); commands run WITHOUT a sandbox because STAGEGATE_ALLOW_UNSANDBOXED is set`
    : `bwrap is not usable (${bwrap.reason}): jobs that run commands will fail; install bubblewrap or set STAGEGATE_ALLOW_UNSANDBOXED=true`;
}

/** One limiter per process: every model call the handler makes (all its concurrent jobs) shares it. */
export function createHandler<R extends AgentRole>(role: R, config: Readonly<Config>, log: Logger, configFile = process.env.STAGEGATE_CONFIG): JobHandler<R> {
  const common = { workDir: config.workDir, commandTimeoutMs: config.commandTimeoutMs };
  const limiter = createProcessModelLimiter(config.model, log);
  const handlers: { [K in AgentRole]: () => JobHandler<K> } = {
    planner: () => createPlannerHandler({ ...common, model: createModelClient(config.model, log, limiter) }),
    coder: () => {
      validateApprovalPatterns(config.coder.requireApproval);
      const turnClient = createTurnClient(config.model, 'coder', log, limiter);
      return createCoderHandler({
        ...common,
        turnClient,
        coder: config.coder,
        price: config.model.pricing[turnClient.model],
        sandbox: lazySandbox(config, log, configFile),
      });
    },
    reviewer: () => createReviewerHandler({ ...common, model: createModelClient(config.model, log, limiter), sandbox: lazySandbox(config, log, configFile) }),
    deployer: () => {
      const github = config.github;
      const configured = github.token !== undefined || github.appId !== undefined;
      return createDeployerHandler({ ...common, ...(configured ? { github: { config: github, client: createGitHubClient(github, log) } } : {}) });
    },
  };
  return handlers[role]() as JobHandler<R>;
}
