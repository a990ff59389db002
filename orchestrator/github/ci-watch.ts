/**
 * Reads the CI checks of tasks waiting for them (`awaitingChecks`) and reports each finished
 * verdict to the task as `checks.reported`. It runs in serve (it needs the GitHub token): on
 * each check webhook (`check_run`, `check_suite`, `workflow_run` completed; `status`), when a
 * task starts waiting, and on a poll in case a delivery was missed. Webhooks only say "look
 * again": what is reported is always read from GitHub for the task's own commit.
 *
 * A failure is described for the coder: the check run's output and failure annotations, the
 * end of the job's log for GitHub Actions (trimmed), or a status's description. Its signature
 * (the check's name and its normalised error lines) tells the same failure from a new one. The
 * same checks failing on the base branch's head make the report `baseRed`.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { CheckFailure, ChecksReported } from '../../core/bus/messages.js';
import type { GitHubCiConfig } from '../../core/config.js';
import { errorMessage } from '../../core/errors.js';
import { listAll, type GitHubOctokit } from '../../core/github/client.js';
import { judgeChecks, readCommitChecks, type CheckState } from '../../core/github/commit-checks.js';
import type { Logger } from '../../core/log.js';
import { checkedCommit, type TaskRecord } from '../../core/task-record.js';
import type { InboxPublish } from '../inbox-publisher.js';
import type { TaskClient } from '../task-client.js';
// Stagegate's own check run reports the gate, not the code: never waited on.
import { CHECK_NAME as GATE_CHECK_NAME } from './gate-check.js';
import type { IssueIndex } from './issue-index.js';
import { Repository, repositoryRefOf, type RepositoryClients } from './payloads.js';
import type { RoutedDelivery } from './webhook-route.js';

export interface CiWatchDeps {
  tasks: Pick<TaskClient, 'get' | 'list'>;
  index: IssueIndex;
  github: RepositoryClients;
  settings: Pick<GitHubCiConfig, 'pollMs' | 'noChecksAfterMs' | 'logTailChars'>;
  publish: InboxPublish;
  log: Logger;
  now(): Date;
}

/** Where a check event happened: the repository, the commit and the branches it names. */
export const CheckEvent = z.object({
  repository: Repository,
  installation: z.object({ id: z.number().int() }).nullish(),
  check_run: z.object({ head_sha: z.string(), check_suite: z.object({ head_branch: z.string().nullish() }).nullish() }).optional(),
  check_suite: z.object({ head_sha: z.string(), head_branch: z.string().nullish() }).optional(),
  workflow_run: z.object({ head_sha: z.string(), head_branch: z.string().nullish() }).optional(),
  sha: z.string().optional(),
  branches: z.array(z.object({ name: z.string() })).optional(),
});

const FINISHED_ACTIONS: Record<string, string | undefined> = { check_run: 'completed', check_suite: 'completed', workflow_run: 'completed' };

/** Pure routing of a check delivery: which Stagegate branches to look at again. */
export function routeCheckDelivery(deps: CiWatchDeps, event: string, action: string | undefined, payload: unknown): RoutedDelivery | undefined {
  if (event !== 'status' && !(event in FINISHED_ACTIONS)) return undefined;
  if (event !== 'status' && action !== FINISHED_ACTIONS[event]) return { ignored: `${event}.${action ?? ''} is not a finished check` };
  const parsed = CheckEvent.safeParse(payload);
  if (!parsed.success) return { ignored: `a ${event} delivery without a repository and commit` };
  const p = parsed.data;
  const branches =
    event === 'status'
      ? (p.branches ?? []).map((b) => b.name)
      : [p.check_run?.check_suite?.head_branch ?? p.check_suite?.head_branch ?? p.workflow_run?.head_branch ?? null].filter((b): b is string => b !== null);
  const ours = branches.filter((b) => b.startsWith('stagegate/'));
  if (ours.length === 0) return { ignored: 'checks of no Stagegate branch' };
  const ref = repositoryRefOf(p);
  return {
    work: `read the checks of ${ours.join(', ')}`,
    run: async () => {
      for (const branch of ours) {
        const taskId = await deps.index.taskForBranch(ref, branch);
        if (taskId !== undefined) await checkTask(deps, taskId);
      }
    },
  };
}

/** Reads the checks of a task that waits for them, and reports a finished verdict; anything else is left alone. */
export async function checkTask(deps: CiWatchDeps, taskId: string): Promise<void> {
  const record = await deps.tasks.get(taskId);
  const source = record.context.spec.source;
  const commit = checkedCommit(record.context);
  if (record.state !== 'awaitingChecks' || source === undefined || commit === undefined) return;
  const repo = { owner: source.owner, repo: source.repo };
  const log = deps.log.child({ taskId, owner: repo.owner, repo: repo.repo, commit });
  const octokit = await deps.github.forRepository({ ...repo, ...(source.installationId === undefined ? {} : { installationId: source.installationId }) });
  const checks = (await readCommitChecks(octokit, repo, commit)).filter((c) => c.name !== GATE_CHECK_NAME);
  const verdict = judgeChecks(checks, []);
  if (verdict.kind === 'pending') {
    log.debug({ waiting: verdict.waiting }, 'checks still running');
    return;
  }
  const sentAt = deps.now();
  if (verdict.kind === 'green') {
    const waitedMs = sentAt.getTime() - Date.parse(waitingSince(record));
    if (checks.length === 0 && waitedMs < deps.settings.noChecksAfterMs) return;
    const summary = checks.length === 0 ? `no checks reported within ${Math.round(deps.settings.noChecksAfterMs / 1000)} s` : checks.map((c) => `${c.name} ${c.state}`).join(', ');
    await report(deps, log, { taskId, commit, verdict: 'green', failures: [], baseRed: false, summary, sentAt });
    return;
  }
  const failures = await Promise.all(verdict.failed.map((check) => describeFailure(octokit, repo, check, deps.settings.logTailChars, log)));
  const baseRed = await failsOnBase(octokit, repo, record.context.spec.base, verdict.failed, log);
  const summary = verdict.failed.map((c) => `${c.name} ${c.state}`).join(', ');
  await report(deps, log, { taskId, commit, verdict: 'red', failures, baseRed, summary, sentAt });
}

/** Every task waiting for checks, read again: what a missed webhook would have done. */
export async function pollWaitingTasks(deps: CiWatchDeps): Promise<void> {
  const waiting = (await deps.tasks.list()).filter((r) => r.state === 'awaitingChecks');
  for (const record of waiting) {
    await checkTask(deps, record.context.taskId).catch((err: unknown) =>
      deps.log.warn({ taskId: record.context.taskId, err: errorMessage(err) }, 'reading the checks failed; the next poll tries again'),
    );
  }
}

export function startCiPolling(deps: CiWatchDeps): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() => pollWaitingTasks(deps)).catch((err: unknown) => deps.log.warn({ err: errorMessage(err) }, 'polling the checks failed'));
  }, deps.settings.pollMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

async function report(
  deps: CiWatchDeps,
  log: Logger,
  r: Omit<ChecksReported, 'type' | 'msgId' | 'sentAt'> & { sentAt: Date },
): Promise<void> {
  const signatures = r.failures.map((f) => f.signature).sort().join(',');
  const event: ChecksReported = {
    type: 'checks.reported',
    taskId: r.taskId,
    msgId: `${r.taskId}:checks:${r.commit}:${r.verdict}${r.verdict === 'red' ? `:${digest(`${signatures}:${r.baseRed}`)}` : ''}`,
    sentAt: r.sentAt.toISOString(),
    commit: r.commit,
    verdict: r.verdict,
    failures: r.failures,
    baseRed: r.baseRed,
    summary: r.summary,
  };
  await deps.publish(event);
  log.info({ verdict: r.verdict, baseRed: r.baseRed, summary: r.summary }, 'checks reported to the task');
}

/** When the task began to wait: the end of the review that sent it here. */
function waitingSince(record: TaskRecord): string {
  const review = record.context.stages.findLast((s) => s.stage === 'review' && s.endedAt !== null);
  return review?.endedAt ?? record.context.updatedAt;
}

const Annotations = z.array(z.object({ path: z.string(), start_line: z.number().nullish(), annotation_level: z.string().nullish(), message: z.string(), title: z.string().nullish() }));

async function describeFailure(octokit: GitHubOctokit, repo: { owner: string; repo: string }, check: CheckState, tailChars: number, log: Logger): Promise<CheckFailure> {
  const parts: string[] = [`${check.name}: ${check.state}`];
  const errorLines: string[] = [];
  if (check.source.kind === 'status') {
    if (check.source.description !== '') parts.push(check.source.description);
    errorLines.push(check.source.description);
  } else {
    const { id, app, output } = check.source;
    if (output !== '') parts.push(output);
    const annotations = await listAll(octokit.paginate.iterator(octokit.rest.checks.listAnnotations, { ...repo, check_run_id: id, per_page: 100 }), `annotations of check run ${id}`)
      .then((items) => Annotations.parse(items).filter((a) => a.annotation_level === 'failure'))
      .catch((err: unknown) => {
        log.warn({ check: check.name, err: errorMessage(err) }, 'could not read the annotations of a failed check');
        return [];
      });
    for (const a of annotations) parts.push(`${a.path}${a.start_line == null ? '' : `:${a.start_line}`}: ${a.title == null ? '' : `${a.title}: `}${a.message}`);
    errorLines.push(...annotations.map((a) => `${a.path} ${a.message}`));
    if (app === 'github-actions') {
      const tail = await jobLogTail(octokit, repo, id, tailChars).catch((err: unknown) => {
        log.warn({ check: check.name, err: errorMessage(err) }, 'could not read the log of a failed job');
        return undefined;
      });
      if (tail !== undefined) {
        parts.push(`Log (end):\n${tail}`);
        if (annotations.length === 0) errorLines.push(...tail.split('\n').filter((line) => ERROR_LINE.test(line)));
      }
    }
    if (errorLines.length === 0) errorLines.push(output);
  }
  return {
    name: check.name,
    ...(check.url === undefined ? {} : { url: check.url }),
    details: parts.join('\n\n'),
    signature: `${check.name}:${digest(errorLines.map(normaliseErrorLine).filter((l) => l !== '').slice(0, 20).join('\n'))}`,
  };
}

const ERROR_LINE = /\b(error|fail(ed|ure)?|assert(ion)?|exception|panic)\b|✗|✖|×/i;
/** GitHub Actions prefixes each log line with a timestamp. */
const LOG_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ?/;
// eslint-disable-next-line no-control-regex -- ANSI colour codes in CI logs are exactly what is removed
const ANSI = /\u001b\[[0-9;]*m/g;

/** The job log's end, without timestamps and colours. */
async function jobLogTail(octokit: GitHubOctokit, repo: { owner: string; repo: string }, jobId: number, tailChars: number): Promise<string> {
  const { data } = await octokit.rest.actions.downloadJobLogsForWorkflowRun({ ...repo, job_id: jobId });
  const text = (typeof data === 'string' ? data : String(data))
    .split('\n')
    .map((line) => line.replace(LOG_TIMESTAMP, '').replace(ANSI, ''))
    .join('\n');
  return text.length <= tailChars ? text : `…\n${text.slice(-tailChars)}`;
}

/** What makes two runs of the same failure differ (times, durations, ids, addresses) taken out. */
function normaliseErrorLine(line: string): string {
  return line
    .replace(LOG_TIMESTAMP, '')
    .replace(/\b[0-9a-f]{7,40}\b/gi, 'H')
    .replace(/\d+(\.\d+)?/g, 'N')
    .replace(/\s+/g, ' ')
    .trim();
}

/** The failed checks fail on the base branch's head too: the change is not what broke them. */
async function failsOnBase(octokit: GitHubOctokit, repo: { owner: string; repo: string }, base: string, failed: readonly CheckState[], log: Logger): Promise<boolean> {
  try {
    const { data } = await octokit.rest.repos.getBranch({ ...repo, branch: base });
    const onBase = await readCommitChecks(octokit, repo, data.commit.sha);
    const red = new Set(onBase.filter((c) => judgeChecks([c], []).kind === 'red').map((c) => c.name));
    return failed.length > 0 && failed.every((c) => red.has(c.name));
  } catch (err) {
    log.warn({ base, err: errorMessage(err) }, 'could not read the checks of the base branch; taking it as green');
    return false;
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}
