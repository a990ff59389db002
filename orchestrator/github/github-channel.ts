/**
 * The GitHub channel, run inside `stagegate serve` (it holds the GitHub credentials and the
 * webhook secret; agents never do): the webhook route (when a secret is configured), what each
 * delivery means (the repository's trigger label starts a task, a comment is a command, a pull request on a Stagegate
 * branch is linked to its task, a push to its branch tells the task (`branch-moves.ts`), a pull request that no longer merges into its
 * base sends the task to an update round (`base-watch.ts`), people's review comments go back to the coder:
 * `human-review.ts`, and are answered in their threads after its push: `thread-replies.ts`; anything about a pull request from a fork is ignored), and a durable follower of the task log that keeps each task's
 * status comment and label, and the `stagegate` check run on its head (`gate-check.ts`), in line with the task.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { GITHUB_CHANNEL_CONSUMER } from '../../core/bus/subjects.js';
import { openUsageBucket } from '../../core/bus/topology.js';
import type { Config } from '../../core/config.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import { followAppliedEvents, type FollowingEvents } from '../channels/follow-events.js';
import type { RouteModule } from '../serve/route-module.js';
import { inboxPublisher } from '../inbox-publisher.js';
import type { TaskClient } from '../task-client.js';
import { BASE_WATCHED_STATES, PullRequestEdited, checkBase, routeBasePush, routePullRequestEdited, type BaseWatchDeps } from './base-watch.js';
import { PullRequestSynchronize, onPullRequestSynchronize, type BranchMoveDeps } from './branch-moves.js';
import { isBot, parseCommand } from './command-parse.js';
import { checkTask, routeCheckDelivery, startCiPolling, type CiWatchDeps } from './ci-watch.js';
import { onIssueComment, type CommandDeps } from './commands.js';
import { openDeliveryStore } from './deliveries.js';
import { PullRequestReviewCommentCreated, PullRequestReviewSubmitted, routePullRequestReview, routePullRequestReviewComment, sendWaitingComments, type HumanReviewDeps } from './human-review.js';
import { openIssueIndex, type IssueIndex } from './issue-index.js';
import { limitComments } from './limit-comment.js';
import { IssueCommentCreated, IssuesLabeled, PullRequestOpened, isFromFork, repositoryRefOf, type RepositoryClients } from './payloads.js';
import { createPermissionChecker } from './permissions.js';
import { reconcileGateCheck, type GateCheckDeps } from './gate-check.js';
import { postGateReminder } from './gate-reminder.js';
import { createSettingsLoader } from './repo-settings.js';
import { reconcileStatus, type StatusDeps } from './status-channel.js';
import { answerReviewThreads, type ThreadReplyDeps } from './thread-replies.js';
import { openThreadStore } from './thread-store.js';
import { openStatusStore } from './status-store.js';
import { onIssueLabeled, type TriggerDeps } from './triggers.js';
import { githubWebhookRoutes, type RoutedDelivery } from './webhook-route.js';

const Action = z.object({ action: z.string().optional() });

export interface GitHubChannelOptions {
  config: Readonly<Pick<Config, 'github' | 'gates' | 'maxReviewRounds' | 'serve'> & Partial<Pick<Config, 'stageTimeoutsMs'>>>;
  nc: NatsConnection;
  tasks: TaskClient;
  github: RepositoryClients;
  /** serve's git gateway (`<serve URL>/git`), known once serve listens: where agents clone. */
  gitGatewayUrl: () => string;
  log: Logger;
  now?: () => Date;
}

export interface GitHubChannel {
  /** `POST /webhooks/github` when a webhook secret is configured; nothing otherwise. */
  routes: RouteModule[];
  /** The issue, branch and pull request index: the PR work links pull requests through it. */
  index: IssueIndex;
  /** Brings a task's status comment and label up to date now (after linking its pull request, say). */
  refreshStatus(taskId: string): Promise<void>;
  start(): Promise<void>;
  /** Stops following the log and waits for the deliveries being handled. */
  stop(): Promise<void>;
}

export async function createGitHubChannel(options: GitHubChannelOptions): Promise<GitHubChannel> {
  const { config, nc, tasks, github, log } = options;
  const now = options.now ?? (() => new Date());
  const settings = config.github;
  const index = await openIssueIndex(nc);
  const statusDeps: StatusDeps = {
    tasks,
    store: await openStatusStore(nc),
    index,
    github,
    commandPermission: settings.commandPermission,
    triggerLabel: settings.label,
    log,
    now,
  };
  const refusals = limitComments(await openUsageBucket(nc));
  const settingsOf = createSettingsLoader(
    github,
    {
      label: settings.label,
      gates: config.gates,
      maxReviewRounds: config.maxReviewRounds,
      maxReviewerRounds: settings.maxReviewerRounds,
      ci: settings.ci.enabled ? { maxFixAttempts: settings.ci.maxFixAttempts, onRedBase: settings.ci.onRedBase } : undefined,
    },
    log,
  );
  const triggerDeps: TriggerDeps = {
    tasks,
    index,
    gitGatewayUrl: options.gitGatewayUrl,
    settings: settingsOf,
    github,
    limitComments: refusals,
    ...(config.stageTimeoutsMs === undefined ? {} : { stageTimeoutsMs: config.stageTimeoutsMs }),
    log,
    now,
  };
  const commandDeps: CommandDeps = {
    tasks,
    index,
    github,
    limitComments: refusals,
    permissions: createPermissionChecker({ cacheMs: settings.permissionCacheMs }),
    commandPermission: settings.commandPermission,
    settings: settingsOf,
    log,
  };
  const publish = inboxPublisher(nc);
  const threads = await openThreadStore(nc);
  const deliveries = await openDeliveryStore(nc);
  const reviewDeps: HumanReviewDeps = {
    ...commandDeps,
    botLogin: settings.botLogin,
    rules: { botLogin: settings.botLogin, reviewBots: settings.reviewBots, skipMarker: settings.skipMarker },
    maxReviewerRounds: settings.maxReviewerRounds,
    threads,
    answers: deliveries,
    publish,
    now,
  };
  const threadDeps: ThreadReplyDeps = { threads, github, log, now };
  const branchDeps: BranchMoveDeps = { index, github, botLogin: settings.botLogin, publish, log, now };
  const baseDeps: BaseWatchDeps = { tasks, index, github, publish, log, now };
  const checkDeps: GateCheckDeps = { tasks, github, via: settings.appId === undefined ? 'commit-status' : 'check-run', log };
  const ciDeps: CiWatchDeps = { tasks, index, github, settings: settings.ci, publish, log, now };

  function ignoreFork(pull: { number: number; head: { repo: { full_name: string } | null } }, event: string): RoutedDelivery {
    log.info({ event, pullRequest: pull.number, headRepository: pull.head.repo?.full_name ?? null }, 'event about a pull request from a fork ignored');
    return { ignored: 'a pull request from a fork starts, steers and approves nothing' };
  }

  /** Pure routing: which deliveries mean work. Everything else is acknowledged and ignored. */
  function route(event: string, payload: unknown): RoutedDelivery {
    const action = Action.safeParse(payload).data?.action;
    if (event === 'issues' && action === 'labeled') {
      const labeled = parseAt(IssuesLabeled, payload, 'GitHub issues.labeled delivery');
      if (labeled.issue.pull_request != null) return { ignored: 'a label on a pull request starts nothing' };
      // Which label starts a task is the repository's setting: any label may be it, so each is read.
      return { work: 'submit a task for the issue if the label is the repository\'s trigger label', run: async () => void (await onIssueLabeled(triggerDeps, labeled)) };
    }
    if (event === 'issue_comment' && action === 'created') {
      const created = parseAt(IssueCommentCreated, payload, 'GitHub issue_comment.created delivery');
      if (isBot(created.comment.user, settings.botLogin)) return { ignored: 'a comment by a bot' };
      const command = parseCommand(created.comment.body);
      if (command === undefined) return { ignored: 'not a command' };
      return { work: `command /${command.name}`, run: () => onIssueComment(commandDeps, created, command) };
    }
    if (event === 'pull_request' && (action === 'opened' || action === 'reopened')) {
      const opened = parseAt(PullRequestOpened, payload, `GitHub pull_request.${action} delivery`);
      if (isFromFork(opened.pull_request)) return ignoreFork(opened.pull_request, `pull_request.${action}`);
      if (!opened.pull_request.head.ref.startsWith('stagegate/')) return { ignored: 'not a Stagegate branch' };
      return { work: 'link the pull request to its task', run: () => linkOpenedPullRequest(opened) };
    }
    if (event === 'pull_request' && action === 'synchronize') {
      const pushed = parseAt(PullRequestSynchronize, payload, 'GitHub pull_request.synchronize delivery');
      if (isFromFork(pushed.pull_request)) return ignoreFork(pushed.pull_request, 'pull_request.synchronize');
      if (!pushed.pull_request.head.ref.startsWith('stagegate/')) return { ignored: 'not a Stagegate branch' };
      return { work: 'tell the task its branch moved', run: () => onPullRequestSynchronize(branchDeps, pushed) };
    }
    if (event === 'pull_request' && action === 'edited') {
      const edited = parseAt(PullRequestEdited, payload, 'GitHub pull_request.edited delivery');
      if (isFromFork(edited.pull_request)) return ignoreFork(edited.pull_request, 'pull_request.edited');
      return routePullRequestEdited(baseDeps, edited);
    }
    if (event === 'push') return routeBasePush(baseDeps, payload);
    const checks = routeCheckDelivery(ciDeps, event, action, payload);
    if (checks !== undefined) return checks;
    if (event === 'pull_request_review' && action === 'submitted') {
      const review = parseAt(PullRequestReviewSubmitted, payload, 'GitHub pull_request_review.submitted delivery');
      if (isFromFork(review.pull_request)) return ignoreFork(review.pull_request, 'pull_request_review.submitted');
      return routePullRequestReview(reviewDeps, review);
    }
    if (event === 'pull_request_review_comment' && action === 'created') {
      const created = parseAt(PullRequestReviewCommentCreated, payload, 'GitHub pull_request_review_comment.created delivery');
      if (isFromFork(created.pull_request)) return ignoreFork(created.pull_request, 'pull_request_review_comment.created');
      return routePullRequestReviewComment(reviewDeps, created);
    }
    return { ignored: action === undefined ? `no handler for ${event}` : `no handler for ${event}.${action}` };
  }

  async function linkOpenedPullRequest(event: PullRequestOpened): Promise<void> {
    const { owner, repo } = repositoryRefOf(event);
    const taskId = await index.taskForBranch({ owner, repo }, event.pull_request.head.ref);
    if (taskId === undefined) return;
    await index.linkPullRequest({ owner, repo, number: event.pull_request.number, url: event.pull_request.html_url }, taskId);
    log.info({ taskId, owner, repo, pullRequest: event.pull_request.number }, 'github pull request linked to its task');
    await reconcileStatus(statusDeps, taskId);
  }

  const inFlight = new Set<Promise<void>>();
  const routes: RouteModule[] =
    settings.webhookSecret === undefined
      ? []
      : [
          githubWebhookRoutes({
            secret: settings.webhookSecret,
            bodyLimitBytes: config.serve.bodyLimitBytes,
            deliveries,
            route,
            track(work) {
              inFlight.add(work);
              void work.finally(() => inFlight.delete(work));
            },
            log,
          }),
        ];

  let following: FollowingEvents | undefined;
  let polling: { stop(): Promise<void> } | undefined;
  return {
    routes,
    index,
    refreshStatus: (taskId) => reconcileStatus(statusDeps, taskId),
    async start() {
      if (checkDeps.via === 'commit-status') log.info('the stagegate check is a commit status: GitHub lets only Apps write check runs (GITHUB_APP_ID with checks: write)');
      following = await followAppliedEvents({
        nc,
        consumer: GITHUB_CHANNEL_CONSUMER,
        log,
        handle: async (entry) => {
          await reconcileStatus(statusDeps, entry.taskId);
          const event = entry.event;
          const moved = entry.accepted && event.type === 'branch.moved' && event.before !== undefined ? { before: event.before, after: event.sha } : undefined;
          await reconcileGateCheck(checkDeps, entry.taskId, moved);
          // Reaching a gate or the checks wait, or a new head there: does the pull request still merge into its base?
          if (entry.accepted && BASE_WATCHED_STATES.has(entry.state)) {
            await checkBase(baseDeps, entry.taskId).catch((err: unknown) =>
              log.warn({ taskId: entry.taskId, err: errorMessage(err) }, 'reading whether the pull request merges into its base failed; the next event or push tries again'),
            );
          }
          if (entry.accepted && entry.event.type === 'gate.timer_fired' && entry.event.kind === 'remind') {
            await postGateReminder(statusDeps, entry.event);
          }
          // Checks may all have finished before the review did: read them as soon as the task waits.
          if (entry.accepted && entry.state === 'awaitingChecks') {
            await checkTask(ciDeps, entry.taskId).catch((err: unknown) =>
              log.warn({ taskId: entry.taskId, err: errorMessage(err) }, 'reading the checks failed; the next poll tries again'),
            );
          }
          await answerReviewThreads(threadDeps, entry);
          await sendWaitingComments(reviewDeps, entry);
        },
      });
      if (settings.ci.enabled) polling = startCiPolling(ciDeps);
    },
    async stop() {
      await polling?.stop();
      await following?.stop();
      await Promise.allSettled([...inFlight]).then((results) => {
        for (const r of results) if (r.status === 'rejected') log.error({ err: errorMessage(r.reason) }, 'github delivery failed while stopping');
      });
    },
  };
}
