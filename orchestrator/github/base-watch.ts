/**
 * Reads whether a waiting task's pull request still merges into its base, and tells the task
 * when it does not: `base.moved` with GitHub's `mergeable_state`, `dirty` (it conflicts) or
 * `behind` (GitHub says so only when the base's protection requires up-to-date branches, so
 * the pull request could not merge as it is). The task then updates its branch (an implement
 * job that merges the base in) and is reviewed again.
 *
 * It runs in serve, like the CI watch: on a push to a branch that is the base of waiting tasks,
 * on `pull_request` deliveries for a task's pull request, and whenever a task starts to wait
 * at the review or deploy gate or for checks (or learns a new head while it waits). What is
 * reported is always read from GitHub: GitHub computes mergeability lazily, so a `null`
 * `mergeable` is read again a few times before the task is left alone until the next look.
 */
import { z } from 'zod';
import type { BaseMoved } from '../../core/bus/messages.js';
import type { Logger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import { checkedCommit, type TaskState } from '../../core/task-record.js';
import type { InboxPublish } from '../inbox-publisher.js';
import type { TaskClient } from '../task-client.js';
import type { IssueIndex } from './issue-index.js';
import { PullRequestEnds, Repository, repositoryRefOf, type RepositoryClients } from './payloads.js';
import type { RoutedDelivery } from './webhook-route.js';

/** Where an update round may start: nobody is at work on the branch, and it is not being deployed. */
export const BASE_WATCHED_STATES: ReadonlySet<string> = new Set<TaskState>(['awaitingReviewApproval', 'awaitingDeployApproval', 'awaitingChecks']);

/** Reads of a pull request whose mergeability GitHub has not computed yet. */
const MERGEABLE_READS = 4;
const MERGEABLE_RETRY_MS = 1_000;

export interface BaseWatchDeps {
  tasks: Pick<TaskClient, 'get' | 'list'>;
  index: Pick<IssueIndex, 'pullRequestOf' | 'taskForPullRequest'>;
  github: RepositoryClients;
  publish: InboxPublish;
  log: Logger;
  now(): Date;
  /** Waits between reads of a not-yet-computed mergeability; a timer by default. */
  sleep?(ms: number): Promise<void>;
}

const PullMergeability = z.object({
  state: z.string(),
  mergeable: z.boolean().nullable(),
  mergeable_state: z.string(),
  head: z.object({ sha: z.string().regex(/^[0-9a-f]{40,64}$/) }),
  base: z.object({ ref: z.string(), sha: z.string().regex(/^[0-9a-f]{40,64}$/) }),
});

/** Reads the task's pull request and reports a conflict with (or lag behind) its base; anything else is left alone. */
export async function checkBase(deps: BaseWatchDeps, taskId: string): Promise<void> {
  const record = await deps.tasks.get(taskId);
  const source = record.context.spec.source;
  const head = checkedCommit(record.context);
  if (!BASE_WATCHED_STATES.has(record.state) || source === undefined || head === undefined) return;
  const linked = await deps.index.pullRequestOf(taskId);
  if (linked === undefined) return;
  const repo = { owner: source.owner, repo: source.repo };
  const log = deps.log.child({ taskId, owner: repo.owner, repo: repo.repo, pullRequest: linked.number });
  const octokit = await deps.github.forRepository({ ...repo, ...(source.installationId === undefined ? {} : { installationId: source.installationId }) });
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let pull: z.infer<typeof PullMergeability> | undefined;
  for (let read = 1; read <= MERGEABLE_READS; read++) {
    const reply = await octokit.rest.pulls.get({ ...repo, pull_number: linked.number });
    pull = parseAt(PullMergeability, reply.data, `GitHub pull request ${repo.owner}/${repo.repo}#${linked.number}`, taskId);
    if (pull.mergeable !== null || pull.state !== 'open') break;
    if (read < MERGEABLE_READS) await sleep(MERGEABLE_RETRY_MS * read);
  }
  if (pull === undefined || pull.state !== 'open') return;
  if (pull.head.sha !== head) {
    // A push the task has not heard of yet: its `branch.moved` brings the task back here.
    log.debug({ prHead: pull.head.sha, taskHead: head }, 'pull request head is not the task head yet');
    return;
  }
  const state = pull.mergeable_state === 'dirty' || pull.mergeable === false ? 'dirty' : pull.mergeable_state === 'behind' ? 'behind' : undefined;
  if (state === undefined) {
    log.debug({ mergeable: pull.mergeable, mergeableState: pull.mergeable_state }, 'pull request merges into its base');
    return;
  }
  const event: BaseMoved = {
    type: 'base.moved',
    taskId,
    msgId: `${taskId}:base:${head}:${pull.base.sha}:${state}`,
    sentAt: deps.now().toISOString(),
    head,
    baseSha: pull.base.sha,
    mergeableState: state,
  };
  await deps.publish(event);
  log.info({ head, base: pull.base.ref, baseSha: pull.base.sha, mergeableState: state }, 'pull request needs an update from its base');
}

export const PushDelivery = z.object({ ref: z.string(), after: z.string(), repository: Repository, installation: z.object({ id: z.number().int() }).nullish() });

/** A push to a branch other than a Stagegate one may have moved the base of waiting tasks: they are read again. */
export function routeBasePush(deps: BaseWatchDeps, payload: unknown): RoutedDelivery {
  const push = parseAt(PushDelivery, payload, 'GitHub push delivery');
  if (!push.ref.startsWith('refs/heads/')) return { ignored: 'a push to a tag' };
  const branch = push.ref.slice('refs/heads/'.length);
  if (branch.startsWith('stagegate/')) return { ignored: 'a push to a Stagegate branch (its pull request says so)' };
  const { owner, repo } = repositoryRefOf(push);
  return {
    work: `read the pull requests of tasks based on ${branch}`,
    run: async () => {
      const waiting = (await deps.tasks.list()).filter((r) => {
        const source = r.context.spec.source;
        return BASE_WATCHED_STATES.has(r.state) && source !== undefined && source.owner.toLowerCase() === owner.toLowerCase() && source.repo.toLowerCase() === repo.toLowerCase() && r.context.spec.base === branch;
      });
      for (const record of new Map(waiting.map((r) => [r.context.taskId, r])).keys()) await checkBase(deps, record);
    },
  };
}

export const PullRequestEdited = z.object({
  action: z.literal('edited'),
  pull_request: z.object({ number: z.number().int().positive(), ...PullRequestEnds }),
  repository: Repository,
  installation: z.object({ id: z.number().int() }).nullish(),
});

/** An edited pull request may have a new base: a task's is read again. */
export function routePullRequestEdited(deps: BaseWatchDeps, edited: z.infer<typeof PullRequestEdited>): RoutedDelivery {
  if (!edited.pull_request.head.ref.startsWith('stagegate/')) return { ignored: 'not a Stagegate branch' };
  const { owner, repo } = repositoryRefOf(edited);
  return {
    work: 'read whether the pull request still merges into its base',
    run: async () => {
      const taskId = await deps.index.taskForPullRequest({ owner, repo, number: edited.pull_request.number });
      if (taskId !== undefined) await checkBase(deps, taskId);
    },
  };
}
