/**
 * Comment commands on an issue or its pull request (never one from a fork: ignored, unanswered).
 * A command counts only from someone whose
 * permission on the repository is at least `commandPermission` (the collaborator permission
 * API, cached); anyone else is told so politely and nothing changes. Decisions go through the
 * task client's `decide()` as `github:<login>` via `github`, with the permission (and the
 * teams the gate's policy names) as the facts the channel verified. Every command is answered
 * with a comment saying what happened; bots never reach here (see `github-channel.ts`).
 * A comment carries no gate visit (a Slack button does), so a decision written before the gate
 * the task now waits at was opened is not applied to it: a second `/approve` must not pass the
 * next gate too. It is answered with who decided the gate it was meant for. A `/retry` the
 * limits refuse is answered once per limit and reset (`limit-comment.ts`).
 */
import { z } from 'zod';
import type { GitHubOctokit } from '../../core/github/client.js';
import type { Gate } from '../../core/bus/messages.js';
import { StagegateError, isStagegateError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import { principalsNamedFor, type Permission, type PrincipalFacts } from '../../core/policy.js';
import { GATE_STATES, gateAt, isFinished, type TaskRecord } from '../../core/task-record.js';
import { GateAlreadyDecided, lastDecidedGate } from '../gate-outcome.js';
import { gateStatusOf, headNamedBy, isPinnedGate, shortSha } from '../gate-policy.js';
import { LimitReached } from '../limits/limit-reached.js';
import type { DecisionAnswer, TaskClient } from '../task-client.js';
import type { IssueCommand } from './command-parse.js';
import type { IssueIndex } from './issue-index.js';
import { limitCommentText, type LimitComments } from './limit-comment.js';
import { PullRequestEnds, isFromFork, repositoryRefOf, type IssueCommentCreated, type RepositoryClients, type RepositoryRef } from './payloads.js';
import { hasAtLeast, type PermissionChecker } from './permissions.js';
import type { SettingsLoader } from './repo-settings.js';
import { renderStatusReply } from './status-comment.js';

const PullRequestReply = z.object({ html_url: z.string(), ...PullRequestEnds });

export interface CommandDeps {
  tasks: TaskClient;
  index: IssueIndex;
  github: RepositoryClients;
  /** Tells a `/retry` the limits refused, once per issue and limit until it resets. */
  limitComments: LimitComments;
  permissions: PermissionChecker;
  /** The least repository permission that makes a command count. */
  commandPermission: Permission;
  /** The repository's settings, for the label that starts a task in the "no task here" answer. */
  settings: SettingsLoader;
  log: Logger;
}

export async function onIssueComment(deps: CommandDeps, event: IssueCommentCreated, command: IssueCommand): Promise<void> {
  const ref = repositoryRefOf(event);
  const { owner, repo } = ref;
  const number = event.issue.number;
  const login = event.comment.user.login;
  const by = `github:${login}`;
  const log = deps.log.child({ owner, repo, issue: number, by, command: command.name });
  const octokit = await deps.github.forRepository(ref);
  const reply = async (text: string) => {
    await octokit.rest.issues.createComment({ owner, repo, issue_number: number, body: `@${login} ${text}` });
  };

  const isPullRequest = event.issue.pull_request != null;
  const onPull = isPullRequest ? await taskForPullRequest(deps.index, octokit, { owner, repo, number }) : undefined;
  if (onPull?.kind === 'fork') {
    log.info({ headRepository: onPull.headRepository }, 'command on a pull request from a fork ignored');
    return;
  }
  const permission = await deps.permissions.permissionOf(octokit, { owner, repo }, login);
  if (permission === 'none' || !hasAtLeast(permission, deps.commandPermission)) {
    log.info({ permission }, 'github command refused: permission below the configured level');
    return reply(
      `thanks — Stagegate takes commands only from people with ${deps.commandPermission} permission or more on ${owner}/${repo}, and yours is ${permission}. Nothing changed.`,
    );
  }
  const taskId = onPull === undefined ? (await deps.index.taskForIssue({ owner, repo, number }))?.value.taskId : onPull.kind === 'task' ? onPull.taskId : undefined;
  if (taskId === undefined) {
    log.info('github command on an issue with no task');
    return reply(
      isPullRequest
        ? 'this pull request belongs to no Stagegate task, so there is nothing to do. Nothing changed.'
        : `there is no Stagegate task for this issue. Add the \`${await triggerLabel(deps, ref, event.repository.default_branch)}\` label to start one. Nothing changed.`,
    );
  }

  let record: TaskRecord;
  try {
    record = await deps.tasks.get(taskId);
  } catch (err) {
    if (!isStagegateError(err, 'TASK_UNKNOWN')) throw err;
    return reply(`task \`${taskId}\` is still being started; try again in a moment. Nothing changed.`);
  }
  const commandLog = log.child({ taskId });
  try {
    switch (command.name) {
      case 'approve':
      case 'reject': {
        if (command.name === 'reject' && command.reason === undefined) {
          return await reply('`/reject` needs a reason after it (`/reject <reason>`): it goes back to the agent. Nothing changed.');
        }
        refuseIfWrittenBeforeGate(record, event.comment.created_at);
        const comment = command.name === 'approve' ? command.comment : command.reason;
        const pinned = command.name === 'approve' ? pinnedHead(record, command.sha) : {};
        if ('refusal' in pinned) {
          commandLog.info({ named: command.name === 'approve' ? command.sha : undefined, head: record.context.head }, 'github approval of a commit that is not the head refused');
          return await reply(pinned.refusal);
        }
        const principal = await principalFacts(deps, octokit, record, login, permission);
        const answer = await deps.tasks.decide({ taskId, decision: command.name, by, via: 'github', principal, ...(comment === undefined ? {} : { comment }), ...pinned });
        commandLog.info({ answer: answer.status, counted: answer.status === 'applied' ? answer.counted : undefined }, 'github decision');
        return await reply(await answerText(deps.tasks, taskId, command.name, answer));
      }
      case 'retry': {
        if (record.state !== 'failed') return await reply(`task \`${taskId}\` is ${record.state}: \`/retry\` runs a failed stage again, and this task has not failed. Nothing changed.`);
        try {
          await deps.tasks.retry(taskId, by);
        } catch (err) {
          if (!(err instanceof LimitReached)) throw err;
          const told = await deps.limitComments.tell(octokit, { owner, repo, number }, err.refusal, limitCommentText(login, `task \`${taskId}\` again`, err.message));
          commandLog.info({ limit: err.refusal.limit, subject: err.refusal.subject, current: err.refusal.current, told }, 'github retry refused: a limit is reached');
          return;
        }
        commandLog.info('github retry');
        return await reply(`running the ${record.context.error?.stage ?? 'failed'} stage of task \`${taskId}\` again; the status comment follows it.`);
      }
      case 'cancel': {
        if (isFinished(record.state)) return await reply(`task \`${taskId}\` is already ${record.state}; there is nothing to cancel.`);
        await deps.tasks.cancel(taskId, by, command.reason ?? `cancelled on GitHub by @${login}`);
        commandLog.info('github cancel');
        return await reply(`cancelling task \`${taskId}\`.`);
      }
      case 'status': {
        const pullRequest = await deps.index.pullRequestOf(taskId);
        return await reply(renderStatusReply(record, pullRequest));
      }
    }
  } catch (err) {
    // Stagegate's own refusals (not at that gate, already decided by someone) are for the person.
    if (!isStagegateError(err, 'TASK_NOT_AT_GATE') && !isStagegateError(err, 'TASK_UNKNOWN')) throw err;
    commandLog.info({ reason: err.message }, 'github command refused');
    await reply(/nothing changed$/i.test(err.message) ? `${err.message}.` : `${err.message}. Nothing changed.`);
  }
}

export type PullRequestTask = { kind: 'task'; taskId: string } | { kind: 'none' } | { kind: 'fork'; headRepository: string | null };

/**
 * The task a pull request belongs to: the link recorded when it was opened, or else its head
 * branch, when that is a Stagegate branch of this repository (asked of GitHub, then linked for
 * next time). A fork's branch may carry any name, so a fork's pull request belongs to no task.
 */
export async function taskForPullRequest(index: IssueIndex, octokit: GitHubOctokit, pr: { owner: string; repo: string; number: number }): Promise<PullRequestTask> {
  const linked = await index.taskForPullRequest(pr);
  if (linked !== undefined) return { kind: 'task', taskId: linked };
  const reply = await octokit.rest.pulls.get({ owner: pr.owner, repo: pr.repo, pull_number: pr.number });
  const pull = parseAt(PullRequestReply, reply.data, `GitHub pull request ${pr.owner}/${pr.repo}#${pr.number}`);
  if (isFromFork(pull)) return { kind: 'fork', headRepository: pull.head.repo?.full_name ?? null };
  const taskId = await index.taskForBranch(pr, pull.head.ref);
  if (taskId === undefined) return { kind: 'none' };
  await index.linkPullRequest({ ...pr, url: pull.html_url }, taskId);
  return { kind: 'task', taskId };
}

/**
 * Throws when the gate the task waits at was opened after the comment was written (GitHub's
 * clock against the orchestrator's: a comment within a clock skew of the opening may be
 * refused, and is answered so; commenting again decides).
 */
function refuseIfWrittenBeforeGate(record: TaskRecord, writtenAt: string | undefined): void {
  const open = record.context.gateVisit;
  if (writtenAt === undefined || open === null || gateAt(record.state) !== open.gate) return;
  // GitHub gives the time to the second: the comment was written before the next second began.
  const latest = Date.parse(writtenAt) + (/\.\d+Z$/.test(writtenAt) ? 0 : 999);
  if (latest >= Date.parse(open.openedAt)) return;
  const taskId = record.context.taskId;
  const decided = lastDecidedGate(record);
  if (decided !== undefined) throw new GateAlreadyDecided(taskId, decided);
  throw new StagegateError('TASK_NOT_AT_GATE', `task ${taskId} reached the ${open.gate} gate after your comment was written; comment again to decide it. Nothing changed`, { taskId });
}

/**
 * The commit an `/approve` at the deploy gate names, as the full head it is a prefix of; or the
 * refusal to send when it names anything else. Without a sha, the orchestrator records the head
 * it knows; at other gates a sha changes nothing.
 */
function pinnedHead(record: TaskRecord, named: string | undefined): { sha?: string } | { refusal: string } {
  const gate = gateAt(record.state);
  if (named === undefined || gate === undefined || !isPinnedGate(gate) || record.context.head === null) return {};
  const head = headNamedBy(record.context, named);
  if (head !== undefined) return { sha: head };
  const now = shortSha(record.context.head);
  return {
    refusal: `\`${named}\` is not the head of \`${record.context.branch}\`: the branch is at \`${now}\` now, and only an approval of the head counts. Look at \`${now}\`, then \`/approve ${now}\` to approve it. Nothing changed.`,
  };
}

/** The permission, and the teams the waiting gate's policy names that the person is in. */
async function principalFacts(deps: CommandDeps, octokit: GitHubOctokit, record: TaskRecord, login: string, permission: Permission): Promise<PrincipalFacts> {
  const gate = gateAt(record.state);
  if (gate === undefined) return { permission };
  const named = principalsNamedFor(record.context.policies, gate)
    .filter((p) => p.startsWith('github-team:'))
    .map((p) => p.slice('github-team:'.length));
  if (named.length === 0) return { permission };
  return { permission, teams: await deps.permissions.teamsOf(octokit, login, named) };
}

async function answerText(tasks: TaskClient, taskId: string, decision: 'approve' | 'reject', answer: DecisionAnswer): Promise<string> {
  const what = decision === 'approve' ? 'approval' : 'rejection';
  if (answer.status === 'queued') return `your ${what} of the ${answer.gate} gate of task \`${taskId}\` is recorded; no orchestrator has answered yet. The status comment shows when it is applied.`;
  if (!answer.counted) return `your ${what} was not counted: ${answer.note ?? 'the gate policy does not count it'}. Nothing changed.`;
  if (decision === 'reject') return `rejected at the ${answer.gate} gate: task \`${taskId}\` is ${answer.state} again, with your reason.`;
  if (answer.state !== GATE_STATES[answer.gate]) return `approved the ${answer.gate} gate: task \`${taskId}\` is now ${answer.state}.`;
  const record = await tasks.get(taskId);
  return `your approval counts: ${stillNeeded(answer.gate, gateStatusOf(record.state, record.context))}`;
}

function stillNeeded(gate: Gate, status: ReturnType<typeof gateStatusOf>): string {
  if (status === undefined || status.gate !== gate) return `the ${gate} gate has moved on.`;
  return `the ${gate} gate has ${status.approvals} of ${status.required} approvals${status.missing === undefined ? '' : ` (${status.missing})`}.`;
}

async function triggerLabel(deps: CommandDeps, ref: RepositoryRef, defaultBranch: string): Promise<string> {
  const loaded = await deps.settings(ref, defaultBranch);
  return loaded.ok ? loaded.settings.label : loaded.label;
}
