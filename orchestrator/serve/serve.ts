/**
 * `stagegate serve`, assembled: the route modules in one list (health, the HTTP API, Slack's
 * HTTP mode; GitHub webhooks go here too), the Slack channel when configured, one HTTP server.
 * Stopping closes the server first, so no request starts a decision on a closing connection.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Config } from '../../core/config.js';
import type { Logger } from '../../core/log.js';
import { createSlackChannel, type SlackChannel } from '../channels/slack/slack-channel.js';
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
  const tasks = await createTaskClient(nc);
  const slack: SlackChannel | undefined =
    config.slack.botToken === undefined
      ? undefined
      : createSlackChannel({ slack: config.slack, nc, tasks, log: log.child({ channel: 'slack' }), bodyLimitBytes: config.serve.bodyLimitBytes });

  const tokens = config.api.tokens.length;
  const channels = [
    tokens === 0 ? 'api (off: no tokens configured)' : `api (${tokens} token${tokens === 1 ? '' : 's'})`,
    ...(slack === undefined
      ? []
      : [slack.mode === 'http' ? `slack (HTTP mode at POST /slack/events, channel ${config.slack.channel})` : `slack (Socket Mode, channel ${config.slack.channel})`]),
  ];
  const routes: RouteModule[] = [
    healthRoutes({ nc, channels: () => channels }),
    apiRoutes({ client: tasks, tokens: config.api.tokens, bodyLimitBytes: config.serve.bodyLimitBytes, log: log.child({ channel: 'api' }) }),
    ...(slack?.routes ?? []),
  ];

  await slack?.start();
  let server;
  try {
    server = await startHttpServer({ host: config.serve.host, port: options.port ?? config.serve.port, log, routes });
  } catch (err) {
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
      await slack?.stop();
    },
  };
}
