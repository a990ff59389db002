/**
 * `issues.labeled` with the repository's trigger label submits a task for the issue: its title
 * and body, the repository at its default branch, a branch `stagegate/<number>-<slug>`, and the
 * issue as the task's source. The repository's settings (`.github/stagegate.yml` on the default
 * branch over the organisation's, over serve's configuration: repo-settings.ts) name the label
 * and give the task its gate policies, commands and limits; invalid settings get one comment on
 * the issue naming the file, the field and what was expected, and no task starts.
 *
 * The issue index says whether the issue already has a task: one still running keeps it
 * (re-labelling starts nothing); a finished, failed or cancelled one may be followed by a new
 * task; one the index names but no orchestrator has recorded (a submission cut short, or still
 * on its way) is submitted again under the same id, which the inbox's message-id dedupe makes
 * harmless.
 * A start the limits refuse (`limits/limit-gate.ts`) submits nothing: the issue is pointed back
 * at its earlier task, if any, and the refusal is told in one comment (`limit-comment.ts`).
 */
import { BranchName, type TaskSpec } from '../../core/bus/messages.js';
import { isStagegateError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { isFinished } from '../../core/task-record.js';
import { LimitReached, type LimitName } from '../limits/limit-reached.js';
import { newTaskId, type TaskClient } from '../task-client.js';
import { withStageTimeouts } from '../timers/stage-timeouts.js';
import type { IssueIndex, StoredIssueTask } from './issue-index.js';
import { gatewayCloneUrl } from './git-gateway.js';
import { limitCommentText, type LimitComments } from './limit-comment.js';
import { repositoryRefOf, type IssuesLabeled, type RepositoryClients } from './payloads.js';
import { renderSettingsProblems, type SettingsLoader } from './repo-settings.js';

const SLUG_MAX = 40;

export interface TriggerDeps {
  tasks: TaskClient;
  index: IssueIndex;
  github: RepositoryClients;
  limitComments: LimitComments;
  /** serve's git gateway (`<serve URL>/git`): where agents clone and push, holding no token. */
  gitGatewayUrl(): string;
  /** The repository's settings over serve's own (label, policies, commands, limits). */
  settings: SettingsLoader;
  /** How long each stage may run (config `stageTimeoutsMs`); absent: no limit. */
  stageTimeoutsMs?: TaskSpec['stageTimeoutsMs'];
  log: Logger;
  now: () => Date;
}

export type TriggerOutcome =
  | { status: 'submitted'; taskId: string }
  | { status: 'refused'; limit: LimitName }
  | { status: 'ignored'; reason: string; taskId?: string };

export async function onIssueLabeled(deps: TriggerDeps, event: IssuesLabeled): Promise<TriggerOutcome> {
  const ref = repositoryRefOf(event);
  const { owner, repo, installationId } = ref;
  const issue = { owner, repo, number: event.issue.number };
  const log = deps.log.child({ owner, repo, issue: issue.number });
  if (event.issue.pull_request != null) {
    log.info('label on a pull request ignored');
    return { status: 'ignored', reason: 'a pull request, not an issue' };
  }
  const loaded = await deps.settings(ref, event.repository.default_branch);
  const label = loaded.ok ? loaded.settings.label : loaded.label;
  if (event.label?.name !== label) {
    log.debug({ label: event.label?.name, triggerLabel: label }, 'not the repository\'s trigger label; ignored');
    return { status: 'ignored', reason: `label ${event.label?.name ?? '(none)'} is not ${label}` };
  }
  if (!loaded.ok) {
    log.warn({ problems: loaded.problems }, 'repository settings invalid; no task started');
    const octokit = await deps.github.forRepository(ref);
    await octokit.rest.issues.createComment({ owner, repo, issue_number: issue.number, body: renderSettingsProblems(event.sender.login, { owner, repo }, label, loaded.problems) });
    return { status: 'ignored', reason: 'the repository settings are not valid' };
  }
  const { settings } = loaded;
  const existing = await deps.index.taskForIssue(issue);
  const standing = existing === undefined ? 'none' : await standingOf(deps, existing);
  if (standing === 'running') {
    log.info({ taskId: existing?.value.taskId }, 'issue already has a running task; label ignored');
    return { status: 'ignored', reason: 'the issue already has a running task', ...(existing === undefined ? {} : { taskId: existing.value.taskId }) };
  }
  let taskId: string;
  /** The revision this delivery claimed the issue at, to undo if the start is refused. */
  let claimed: number | undefined;
  if (standing === 'unrecorded' && existing !== undefined) {
    taskId = existing.value.taskId;
  } else {
    taskId = newTaskId();
    claimed = await deps.index.claimIssue(issue, { taskId, createdAt: deps.now().toISOString() }, existing?.revision);
    if (claimed === undefined) {
      log.info('another label started a task for this issue first');
      return { status: 'ignored', reason: 'another delivery started a task for this issue first' };
    }
  }
  const spec: TaskSpec = {
    ...specForIssue(event, cloneUrlOf(deps.gitGatewayUrl(), taskId, { owner, repo }), installationId),
    ...withStageTimeouts(deps.stageTimeoutsMs),
    ...settings.spec,
  };
  if (spec.branch !== undefined) await deps.index.linkBranch({ owner, repo }, spec.branch, taskId);
  try {
    await deps.tasks.submit({
      spec,
      policies: settings.policies,
      maxReviewRounds: settings.maxReviewRounds,
      maxReviewerRounds: settings.maxReviewerRounds,
      ...(settings.ci === undefined ? {} : { ci: settings.ci }),
      taskId,
    });
  } catch (err) {
    if (!(err instanceof LimitReached)) throw err;
    if (claimed !== undefined) await deps.index.unclaimIssue(issue, existing?.value, claimed);
    const told = await deps.limitComments.tell(
      await deps.github.forRepository(ref),
      issue,
      err.refusal,
      limitCommentText(event.sender.login, 'a task for this issue', err.message),
    );
    log.info({ taskId, by: spec.submittedBy, limit: err.refusal.limit, subject: err.refusal.subject, current: err.refusal.current, told }, 'label refused: a limit is reached');
    return { status: 'refused', limit: err.refusal.limit };
  }
  log.info({ taskId, branch: spec.branch, by: spec.submittedBy, settings: loaded.files }, 'task submitted for a labelled issue');
  return { status: 'submitted', taskId };
}

/** The issue's task: still running, over (a new one may start), or not recorded by any orchestrator yet. */
async function standingOf(deps: TriggerDeps, existing: StoredIssueTask): Promise<'running' | 'over' | 'unrecorded'> {
  try {
    return isFinished((await deps.tasks.get(existing.value.taskId)).state) ? 'over' : 'running';
  } catch (err) {
    if (!isStagegateError(err, 'TASK_UNKNOWN')) throw err;
    return 'unrecorded';
  }
}

export function specForIssue(event: IssuesLabeled, cloneUrl: string, installationId?: number): TaskSpec {
  const owner = event.repository.owner.login;
  const repo = event.repository.name;
  return {
    repo: cloneUrl,
    title: event.issue.title.trim() === '' ? `Issue #${event.issue.number}` : event.issue.title,
    body: event.issue.body ?? '',
    base: event.repository.default_branch,
    submittedBy: `github:${event.sender.login}`,
    branch: branchForIssue(event.issue.number, event.issue.title),
    source: {
      kind: 'github',
      owner,
      repo,
      issueNumber: event.issue.number,
      ...(installationId === undefined ? {} : { installationId }),
    },
  };
}

/**
 * Where agents clone a task's repository: serve's git gateway, `<gateway>/<task>/<owner>/<repo>.git`.
 * The gateway adds a token scoped to the repository on the way to GitHub, so the URL and the
 * agents' clones carry no credentials, and it lets the task push only its own branch.
 */
export function cloneUrlOf(gitGatewayUrl: string, taskId: string, repo: { owner: string; repo: string }): string {
  return gatewayCloneUrl(gitGatewayUrl, taskId, repo);
}

/** `stagegate/<issue>-<slug>`: the slug keeps only a-z, 0-9 and dashes of the title, so no title text reaches git as is. */
export function branchForIssue(issueNumber: number, title: string): string {
  const slug = slugOf(title);
  return BranchName.parse(slug === '' ? `stagegate/${issueNumber}` : `stagegate/${issueNumber}-${slug}`);
}

export function slugOf(title: string): string {
  return title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, SLUG_MAX)
    .replace(/-+$/, '');
}
