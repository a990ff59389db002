/**
 * `stagegate serve`, assembled: the route modules in one list (health, the HTTP API, Slack's
 * HTTP mode, GitHub webhooks), the Slack and GitHub channels when configured, one HTTP server.
 * Stopping closes the server first, so no request starts a decision on a closing connection.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Config } from '../../core/config.js';
import { StagegateError } from '../../core/errors.js';
import { createGitHubClient } from '../../core/github/client.js';
import type { Logger } from '../../core/log.js';
import { createSlackChannel, type SlackChannel } from '../channels/slack/slack-channel.js';
import { createGitHubChannel, type GitHubChannel } from '../github/github-channel.js';
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
  const tasks = await createTaskClient(nc);
  const slack: SlackChannel | undefined =
    config.slack.botToken === undefined
      ? undefined
      : createSlackChannel({ slack: config.slack, nc, tasks, log: log.child({ channel: 'slack' }), bodyLimitBytes: config.serve.bodyLimitBytes });
  const gitHubChannel: GitHubChannel | undefined = gitHubConfigured
    ? await createGitHubChannel({ config, nc, tasks, github: createGitHubClient(github, log), log: log.child({ channel: 'github' }) })
    : undefined;

  const tokens = config.api.tokens.length;
  const channels = [
    tokens === 0 ? 'api (off: no tokens configured)' : `api (${tokens} token${tokens === 1 ? '' : 's'})`,
    ...(slack === undefined
      ? []
      : [slack.mode === 'http' ? `slack (HTTP mode at POST /slack/events, channel ${config.slack.channel})` : `slack (Socket Mode, channel ${config.slack.channel})`]),
    ...(gitHubChannel === undefined
      ? []
      : [`github (webhooks at POST ${GITHUB_WEBHOOK_PATH}, ${github.appId === undefined ? 'token' : `App ${github.appId}`}, label '${github.label}', commands from ${github.commandPermission} permission)`]),
  ];
  const routes: RouteModule[] = [
    healthRoutes({ nc, channels: () => channels }),
    apiRoutes({ client: tasks, tokens: config.api.tokens, bodyLimitBytes: config.serve.bodyLimitBytes, log: log.child({ channel: 'api' }) }),
    ...(slack?.routes ?? []),
    ...(gitHubChannel?.routes ?? []),
  ];

  await slack?.start();
  let server;
  try {
    await gitHubChannel?.start();
    server = await startHttpServer({ host: config.serve.host, port: options.port ?? config.serve.port, log, routes });
  } catch (err) {
    await gitHubChannel?.stop();
    await slack?.stop();
    throw err;
  }
  log.info({ url: server.url, channels, routes: routes.map((r) => r.name) }, 'serve started');
  return {
    url: server.url,
    port: server.port,
    channels,
    async stop() {
      await server.close();
      await gitHubChannel?.stop();
      await slack?.stop();
    },
  };
}
