/**
 * `stagegate serve`, assembled: the route modules in one list (health, the HTTP API, Slack's
 * HTTP mode, GitHub webhooks, the git gateway), the Slack and GitHub channels (status comment,
 * pull requests) when configured, one HTTP server.
 * Stopping closes the server first, so no request starts a decision on a closing connection.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Config } from '../../core/config.js';
import { StagegateError } from '../../core/errors.js';
import { createGitHubClient } from '../../core/github/client.js';
import type { Logger } from '../../core/log.js';
import { createSecretRedactor, secretValuesOf } from '../../core/security/redact-secrets.js';
import { createSlackChannel, type SlackChannel } from '../channels/slack/slack-channel.js';
import { createGitHubChannel, type GitHubChannel } from '../github/github-channel.js';
import type { FollowingLog } from '../channels/follow-log.js';
import { startDigestChannel, type DigestPosters } from '../sessions/digest-channel.js';
import { GIT_GATEWAY_PATH, gitGatewayRoutes } from '../github/git-gateway.js';
import { createPullRequestChannel, type PullRequestChannel } from '../github/pull-request-channel.js';
import { GITHUB_WEBHOOK_PATH } from '../github/webhook-route.js';
import { createTaskClient } from '../task-client.js';
import { startHttpServer } from './http-server.js';
import type { RouteModule } from './route-module.js';
import { apiRoutes } from './routes/api.js';
import { healthRoutes } from './routes/health.js';

export interface ServeOptions {
  config: Readonly<Config>;
  nc: NatsConnection;
  log: Logger;
  /** Overrides `config.serve.port` (`--port`); 0 picks a free port. */
  port?: number;
  /** The clock the limits' windows and days are read from; injected so tests can control time. */
  now?: () => Date;
}

export interface RunningServe {
  url: string;
  port: number;
  /** What is on, in words, for the start line and /readyz: `api (2 tokens)`, `slack (HTTP mode, …)`. */
  channels: string[];
  stop(): Promise<void>;
}

export async function startServe(options: ServeOptions): Promise<RunningServe> {
  const { config, nc, log } = options;
  const github = config.github;
  const gitHubConfigured = github.token !== undefined || github.appId !== undefined;
  if (gitHubConfigured && github.webhookSecret === undefined) {
    throw new StagegateError(
      'CONFIG_INVALID',
      `GitHub is configured (${github.token !== undefined ? 'GITHUB_TOKEN' : 'GITHUB_APP_ID'}) but GITHUB_WEBHOOK_SECRET is not set: serve verifies every webhook delivery with it and will not start without it`,
    );
  }
  if (!gitHubConfigured && github.webhookSecret !== undefined) {
    throw new StagegateError('CONFIG_INVALID', 'GITHUB_WEBHOOK_SECRET is set but GitHub is not: set GITHUB_TOKEN, or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY, so serve can answer on GitHub');
  }
  const now = options.now ?? (() => new Date());
  const tasks = await createTaskClient(nc, { limits: config.limits, now });
  // Whatever serve writes to Slack, GitHub or an API client leaves without the values of the secrets it holds.
  const redact = createSecretRedactor(secretValuesOf(config));
  const slack: SlackChannel | undefined =
    config.slack.botToken === undefined
      ? undefined
      : createSlackChannel({ slack: config.slack, nc, tasks, log: log.child({ channel: 'slack' }), bodyLimitBytes: config.serve.bodyLimitBytes, redact });
  const gitHubClient = gitHubConfigured ? createGitHubClient(github, log, { redact }) : undefined;
  // Where agents clone GitHub tasks' repositories: the configured URL, else this server's own
  // gateway, whose port is known once it listens (a webhook cannot arrive before that).
  let gitGatewayUrl = github.gatewayUrl;
  const gatewayUrl = () => gitGatewayUrl ?? `http://127.0.0.1:${options.port ?? config.serve.port}${GIT_GATEWAY_PATH}`;
  const gitHubChannel: GitHubChannel | undefined =
    gitHubClient === undefined ? undefined : await createGitHubChannel({ config, nc, tasks, github: gitHubClient, gitGatewayUrl: gatewayUrl, log: log.child({ channel: 'github' }), now });
  const pullRequests: PullRequestChannel | undefined =
    gitHubClient === undefined || gitHubChannel === undefined
      ? undefined
      : createPullRequestChannel({ nc, tasks, index: gitHubChannel.index, github: gitHubClient, refreshStatus: gitHubChannel.refreshStatus, log: log.child({ channel: 'github-pr' }) });

  const tokens = config.api.tokens.length;
  const channels = [
    tokens === 0 ? 'api (off: no tokens configured)' : `api (${tokens} token${tokens === 1 ? '' : 's'})`,
    ...(slack === undefined
      ? []
      : [slack.mode === 'http' ? `slack (HTTP mode at POST /slack/events, channel ${config.slack.channel})` : `slack (Socket Mode, channel ${config.slack.channel})`]),
    ...(gitHubChannel === undefined
      ? []
      : [
          `github (webhooks at POST ${GITHUB_WEBHOOK_PATH}, ${github.appId === undefined ? 'token' : `App ${github.appId}`}, label '${github.label}', commands from ${github.commandPermission} permission)`,
          `git gateway (${GIT_GATEWAY_PATH}/<task>/<owner>/<repo>.git)`,
        ]),
  ];
  const routes: RouteModule[] = [
    healthRoutes({ nc, channels: () => channels }),
    apiRoutes({
      client: tasks,
      tokens: config.api.tokens,
      bodyLimitBytes: config.serve.bodyLimitBytes,
      policies: config.gates,
      maxReviewRounds: config.maxReviewRounds,
      stageTimeoutsMs: config.stageTimeoutsMs,
      log: log.child({ channel: 'api' }),
      now,
      redact,
    }),
    ...(slack?.routes ?? []),
    ...(gitHubChannel?.routes ?? []),
    ...(gitHubClient === undefined ? [] : [gitGatewayRoutes({ tasks, github: gitHubClient, log: log.child({ channel: 'git-gateway' }) })]),
  ];

  const posters: DigestPosters = {
    ...(gitHubClient === undefined
      ? {}
      : {
          github: async ({ owner, repo, issueNumber, installationId }, text) => {
            const octokit = await gitHubClient.forRepository({ owner, repo, ...(installationId === undefined ? {} : { installationId }) });
            await octokit.rest.issues.createComment({ owner, repo, issue_number: issueNumber, body: text });
          },
        }),
    ...(slack === undefined ? {} : { slack: (channel: string, text: string) => slack.post(channel, text) }),
  };
  let digests: FollowingLog | undefined;

  await slack?.start();
  let server;
  try {
    await gitHubChannel?.start();
    await pullRequests?.start();
    if (posters.github !== undefined || posters.slack !== undefined) digests = await startDigestChannel({ nc, posters, log: log.child({ channel: 'session-digests' }) });
    server = await startHttpServer({ host: config.serve.host, port: options.port ?? config.serve.port, log, routes });
  } catch (err) {
    await digests?.stop();
    await pullRequests?.stop();
    await gitHubChannel?.stop();
    await slack?.stop();
    throw err;
  }
  gitGatewayUrl ??= `${server.url}${GIT_GATEWAY_PATH}`;
  log.info({ url: server.url, channels, routes: routes.map((r) => r.name), ...(gitHubClient === undefined ? {} : { gitGatewayUrl }) }, 'serve started');
  return {
    url: server.url,
    port: server.port,
    channels,
    async stop() {
      await server.close();
      await digests?.stop();
      await pullRequests?.stop();
      await gitHubChannel?.stop();
      await slack?.stop();
    },
  };
}
