/**
 * The deployer. A task from a GitHub issue is deployed by the configured GitHub strategy
 * (`merge`, `workflow` or `deployment`, in `strategies/`); any other task by the `local` one
 * (merge and push the target branch, running the deploy command).
 *
 * Unlike the coder and the reviewer, the deployer runs no model-written code (the local deploy
 * command is the operator's), so it may hold GitHub credentials: it talks to GitHub's API with the
 * configured token, or with an App installation token scoped to the task's repository and the
 * permissions its strategy needs. It never pushes to GitHub with them: a GitHub task's code only
 * reaches GitHub through serve's git gateway and the pull request.
 */
import type { JobHandler } from '../../core/bus/job-worker.js';
import { deploySettingsOf, type GitHubConfig } from '../../core/config.js';
import { StagegateError } from '../../core/errors.js';
import type { InstallationPermissions } from '../../core/github/auth.js';
import type { GitHubClient } from '../../core/github/client.js';
import { deployByDeployment } from './strategies/deployment.js';
import { systemClock, type Clock, type GitHubDeployInput } from './strategies/github-deploy.js';
import { deployLocally, type LocalDeployDeps } from './strategies/local.js';
import { deployByMerge } from './strategies/merge.js';
import { deployByWorkflow } from './strategies/workflow.js';

export interface DeployerDeps extends LocalDeployDeps {
  /** GitHub, when the deployer is configured for it; a GitHub task without it fails, saying so. */
  github?: { config: GitHubConfig; client: GitHubClient };
  clock?: Clock;
}

const STRATEGIES = { merge: deployByMerge, workflow: deployByWorkflow, deployment: deployByDeployment } as const;

/** The least each strategy needs on the repository (App installation tokens are minted with exactly these). */
const PERMISSIONS: Record<keyof typeof STRATEGIES, InstallationPermissions> = {
  merge: { contents: 'write', pull_requests: 'read', checks: 'read', statuses: 'read' },
  workflow: { actions: 'write', contents: 'read' },
  deployment: { deployments: 'write', contents: 'read', statuses: 'read' },
};

export function createDeployerHandler(deps: DeployerDeps): JobHandler<'deployer'> {
  return async (job, ctx) => {
    const source = job.task.source;
    if (source === undefined) return deployLocally(deps, job, ctx);
    if (deps.github === undefined) {
      throw new StagegateError(
        'CONFIG_INVALID',
        `task ${job.taskId} came from ${source.owner}/${source.repo}#${source.issueNumber}, but this deployer has no GitHub credentials: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY`,
        { taskId: job.taskId },
      );
    }
    const settings = deploySettingsOf(deps.github.config);
    const octokit = await deps.github.client.forRepository(
      { owner: source.owner, repo: source.repo, ...(source.installationId === undefined ? {} : { installationId: source.installationId }) },
      { permissions: PERMISSIONS[settings.strategy] },
    );
    const input: GitHubDeployInput = { job, source, octokit, settings, ctx, clock: deps.clock ?? systemClock };
    await ctx.progress(`deploying with the ${settings.strategy} strategy`);
    return STRATEGIES[settings.strategy](input);
  };
}
