/**
 * A push to the branch of a Stagegate pull request (`pull_request.synchronize`), by a person or
 * by the coder through the git gateway, tells the task its branch moved: `branch.moved` with
 * the head GitHub reports when the delivery is handled. The head is read back rather than taken
 * from the delivery, since deliveries may arrive out of order and the latest read is the branch
 * as it is. Approvals at the deploy gate for an earlier head then no longer count; a head the
 * task already knows (the coder's own push) changes nothing. The event's id comes from the push
 * (`before..after`), so a redelivery publishes nothing twice.
 */
import { z } from 'zod';
import { CommitSha, type BranchMoved, type InboxMessage } from '../../core/bus/messages.js';
import type { Logger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import { isBot } from './command-parse.js';
import type { IssueIndex } from './issue-index.js';
import { GitHubUser, PullRequestEnds, Repository, repositoryRefOf, type RepositoryClients } from './payloads.js';

export const PullRequestSynchronize = z.object({
  action: z.literal('synchronize'),
  number: z.number().int().positive(),
  before: z.string().min(1),
  after: z.string().min(1),
  pull_request: z.object({
    number: z.number().int().positive(),
    html_url: z.string(),
    ...PullRequestEnds,
  }),
  repository: Repository,
  sender: GitHubUser,
  installation: z.object({ id: z.number().int().positive() }).nullish(),
});
export type PullRequestSynchronize = z.infer<typeof PullRequestSynchronize>;

const PullHead = z.object({ head: z.object({ ref: z.string(), sha: z.string().regex(/^[0-9a-f]{40,64}$/) }) });

export interface BranchMoveDeps {
  index: Pick<IssueIndex, 'taskForPullRequest' | 'taskForBranch'>;
  /** Stagegate's own login when it writes with a token: its pushes are not named as a person's. */
  botLogin?: string | undefined;
  github: RepositoryClients;
  /** Publishes to the task's inbox with the event's msgId as the Nats-Msg-Id. */
  publish(event: InboxMessage): Promise<void>;
  log: Logger;
  now(): Date;
}

export async function onPullRequestSynchronize(deps: BranchMoveDeps, event: PullRequestSynchronize): Promise<void> {
  const ref = repositoryRefOf(event);
  const { owner, repo } = ref;
  const number = event.pull_request.number;
  const taskId = (await deps.index.taskForPullRequest({ owner, repo, number })) ?? (await deps.index.taskForBranch({ owner, repo }, event.pull_request.head.ref));
  if (taskId === undefined) return;
  const octokit = await deps.github.forRepository(ref);
  const reply = await octokit.rest.pulls.get({ owner, repo, pull_number: number });
  const pull = parseAt(PullHead, reply.data, `GitHub pull request ${owner}/${repo}#${number}`, taskId);
  const moved: BranchMoved = {
    type: 'branch.moved',
    taskId,
    msgId: `${taskId}:branch:${event.before}..${event.after}`,
    sentAt: deps.now().toISOString(),
    branch: pull.head.ref,
    sha: pull.head.sha,
    ...(CommitSha.safeParse(event.before).success ? { before: event.before } : {}),
    // A bot's push (Stagegate's own through the gateway) names nobody.
    ...(isBot(event.sender, deps.botLogin) ? {} : { by: `github:${event.sender.login}` }),
  };
  await deps.publish(moved);
  deps.log.info({ taskId, owner, repo, pullRequest: number, head: pull.head.sha, by: moved.by }, 'github push to a task branch noted');
}
