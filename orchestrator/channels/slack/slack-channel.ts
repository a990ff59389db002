/**
 * The Slack channel, run inside `stagegate serve` (it holds the Slack tokens; agents never do).
 * Bolt's App receives clicks either over HTTP (an ExpressReceiver mounted on the serve app at
 * `POST /slack/events`, which verifies Slack's signature and refuses requests older than five
 * minutes) or over Socket Mode (no public URL). Its WebClient talks to `slack.apiUrl`, and
 * takes the process's configured secrets out of every message (`redacted-fetch.ts`).
 * A durable consumer on the task log keeps each gate's message in line with the task.
 */
import { App, ExpressReceiver } from '@slack/bolt';
import express from 'express';
import type { NatsConnection } from '@nats-io/transport-node';
import { SLACK_CHANNEL_CONSUMER } from '../../../core/bus/subjects.js';
import type { SlackConfig } from '../../../core/config.js';
import { StagegateError, errorMessage } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import type { RedactSecrets } from '../../../core/security/redact-secrets.js';
import type { RouteModule } from '../../serve/route-module.js';
import type { TaskClient } from '../../task-client.js';
import { followAppliedEvents, type FollowingEvents } from '../follow-events.js';
import { boltLogger } from './bolt-logger.js';
import { registerGateInteractions } from './interactions.js';
import { openMessageStore } from './message-store.js';
import { postReminder, reconcileGateMessages, type ReconcileDeps } from './reconcile.js';
import { redactedSlackFetch } from './redacted-fetch.js';

export const SLACK_EVENTS_PATH = '/slack/events';

export type SlackMode = 'http' | 'socket';

export interface SlackChannelOptions {
  slack: SlackConfig;
  nc: NatsConnection;
  tasks: TaskClient;
  log: Logger;
  bodyLimitBytes: number;
  /** The process's configured secrets, kept out of every message. */
  redact: RedactSecrets;
  now?: () => Date;
}

export interface SlackChannel {
  mode: SlackMode;
  /** `POST /slack/events` in HTTP mode; nothing in Socket Mode. */
  routes: RouteModule[];
  /** Posts a plain message (a session digest) to a channel. */
  post(channel: string, text: string): Promise<void>;
  /** Checks the bot token (auth.test), connects Socket Mode, starts following the task log. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createSlackChannel(options: SlackChannelOptions): SlackChannel {
  const { slack, log } = options;
  const { botToken, channel } = slack;
  if (botToken === undefined || channel === undefined) {
    throw new StagegateError('CONFIG_INVALID', 'the Slack channel needs SLACK_BOT_TOKEN and SLACK_CHANNEL');
  }
  const mode: SlackMode = slack.appToken !== undefined ? 'socket' : 'http';
  const logger = boltLogger(log);
  const router = express.Router();
  const clientOptions = { slackApiUrl: slack.apiUrl, timeout: 10_000, retryConfig: { retries: 2 }, fetch: redactedSlackFetch(options.redact) };
  const receiver =
    mode === 'http'
      ? new ExpressReceiver({
          signingSecret: slack.signingSecret ?? '',
          endpoints: SLACK_EVENTS_PATH,
          router,
          logger,
          // Ack first, work after: Slack wants an answer within 3 seconds, decisions take longer.
          processBeforeResponse: false,
          bodyLimit: options.bodyLimitBytes,
        })
      : undefined;
  const app = new App({
    token: botToken,
    logger,
    clientOptions,
    deferInitialization: true,
    ...(receiver === undefined ? { socketMode: true, appToken: slack.appToken } : { receiver }),
  });
  registerGateInteractions({ app, web: app.client, tasks: options.tasks, log });

  let following: FollowingEvents | undefined;
  return {
    mode,
    routes: receiver === undefined ? [] : [{ name: 'slack', mount: (server) => server.use(router) }],
    async start() {
      try {
        await app.init();
      } catch (err) {
        throw new StagegateError('CONFIG_INVALID', `Slack auth.test at ${slack.apiUrl} failed: ${errorMessage(err)} (check SLACK_BOT_TOKEN and SLACK_API_URL)`, { cause: err });
      }
      const deps: ReconcileDeps = {
        tasks: options.tasks,
        store: await openMessageStore(options.nc),
        web: app.client,
        channel,
        log,
        now: options.now ?? (() => new Date()),
      };
      following = await followAppliedEvents({
        nc: options.nc,
        consumer: SLACK_CHANNEL_CONSUMER,
        log,
        async handle(entry) {
          await reconcileGateMessages(deps, entry.taskId).catch((err: unknown) => {
            if (err instanceof StagegateError && err.code === 'TASK_UNKNOWN') return;
            throw err;
          });
          if (entry.accepted && entry.event.type === 'gate.timer_fired' && entry.event.kind === 'remind') await postReminder(deps, entry.event);
        },
      });
      if (mode === 'socket') await app.start();
    },
    async post(target, text) {
      await app.client.chat.postMessage({ channel: target, text, mrkdwn: true });
    },
    async stop() {
      await following?.stop();
      if (mode === 'socket') await app.stop();
    },
  };
}
