/**
 * The living status of each task that came from a GitHub issue: one comment on the issue,
 * created once and edited whenever what it shows changes, and exactly one `stagegate:<state>`
 * label. A durable follower of applied events (like the Slack channel) brings both in line
 * with the task record, whatever event prompted it, so redelivered or out-of-order events
 * change nothing twice. The comment is claimed in the store before it is posted; a claim left
 * by a process that died is taken over only after looking for the comment it may have posted.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { gitHubStatusOf, listAll, type GitHubOctokit } from '../../core/github/client.js';
import { isStagegateError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import type { TaskRecord } from '../../core/task-record.js';
import type { TaskClient } from '../task-client.js';
import { WriteConflict } from '../../core/bus/versioned-kv.js';
import type { IssueIndex } from './issue-index.js';
import type { RepositoryClients } from './payloads.js';
import { LABEL_LOOKS, LABEL_PREFIX, STATE_LABELS, renderStatusComment, statusMarker } from './status-comment.js';
import type { StatusComment, StatusStore } from './status-store.js';

/** A claim older than this is taken to be from a process that died before it could finish. */
const STALE_CLAIM_MS = 60_000;
const MAX_CONFLICTS = 10;

const CreatedComment = z.object({ id: z.number().int().positive() });
const IssueComments = z.array(z.object({ id: z.number().int().positive(), body: z.string().optional() }));
const IssueLabels = z.array(z.object({ name: z.string() }));

export interface StatusDeps {
  tasks: TaskClient;
  store: StatusStore;
  index: IssueIndex;
  github: RepositoryClients;
  /** `config.github.commandPermission`, for the instructions in the comment. */
  commandPermission: string;
  /** The trigger label (`stagegate`): never removed, even when it looks like a state label. */
  triggerLabel: string;
  log: Logger;
  now: () => Date;
}

/** Brings the task's status comment and label in line with its record; a task without a GitHub source is left alone. */
export async function reconcileStatus(deps: StatusDeps, taskId: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    let record: TaskRecord;
    try {
      record = await deps.tasks.get(taskId);
    } catch (err) {
      if (isStagegateError(err, 'TASK_UNKNOWN')) return;
      throw err;
    }
    if (record.context.spec.source === undefined) return;
    try {
      return await reconcileOnce(deps, record);
    } catch (err) {
      if (!(err instanceof WriteConflict) || attempt >= MAX_CONFLICTS) throw err;
    }
  }
}

async function reconcileOnce(deps: StatusDeps, record: TaskRecord): Promise<void> {
  const { store, log } = deps;
  const taskId = record.context.taskId;
  const source = record.context.spec.source;
  if (source === undefined) return;
  const { owner, repo, issueNumber } = source;
  const octokit = await deps.github.forRepository({ owner, repo, ...(source.installationId === undefined ? {} : { installationId: source.installationId }) });
  const pullRequest = await deps.index.pullRequestOf(taskId);
  const body = renderStatusComment({ record, commandPermission: deps.commandPermission, ...(pullRequest === undefined ? {} : { pullRequest }) });
  const shown = fingerprint(body);
  let stored = await store.load(taskId);
  const current = stored.value;

  if (current === undefined || (current.status === 'creating' && isStale(current, deps.now()))) {
    const claim: StatusComment = { owner, repo, issueNumber, status: 'creating', commentId: null, claimedAt: deps.now().toISOString(), ...(current?.label === undefined ? {} : { label: current.label }) };
    stored = await store.save(taskId, claim, stored);
    // A stale claim may hide a comment that was posted before its poster died: look before creating.
    const found = current === undefined ? undefined : await findStatusComment(octokit, owner, repo, issueNumber, taskId);
    let commentId: number;
    if (found === undefined) {
      let reply;
      try {
        reply = await octokit.rest.issues.createComment({ owner, repo, issue_number: issueNumber, body });
      } catch (err) {
        // The claim is ours and nothing was posted: leave it stale, so the next try takes over at once.
        await store.save(taskId, { ...claim, claimedAt: new Date(0).toISOString() }, stored);
        throw err;
      }
      commentId = parseAt(CreatedComment, reply.data, `GitHub reply to the status comment of task ${taskId}`, taskId).id;
      log.info({ taskId, owner, repo, issue: issueNumber, commentId }, 'github status comment created');
    } else {
      commentId = found;
      await octokit.rest.issues.updateComment({ owner, repo, comment_id: commentId, body });
    }
    stored = await store.save(taskId, { ...claim, status: 'created', commentId, shown }, stored);
  } else if (current.status === 'creating') {
    throw new Error(`the status comment of task ${taskId} is being created by another process (claimed ${current.claimedAt})`);
  } else if (current.shown !== shown && current.commentId !== null) {
    await octokit.rest.issues.updateComment({ owner, repo, comment_id: current.commentId, body });
    stored = await store.save(taskId, { ...current, shown }, stored);
    log.debug({ taskId, state: record.state }, 'github status comment updated');
  }

  const label = STATE_LABELS[record.state];
  if (stored.value !== undefined && stored.value.label !== label) {
    await showStateLabel(deps, octokit, { owner, repo, issueNumber }, label);
    await store.save(taskId, { ...stored.value, label }, stored);
  }
}

/** The issue ends up with `label` and no other `stagegate:<state>` label; the label is created on first use. */
async function showStateLabel(deps: StatusDeps, octokit: GitHubOctokit, where: { owner: string; repo: string; issueNumber: number }, label: string): Promise<void> {
  const { owner, repo, issueNumber } = where;
  const reply = await octokit.rest.issues.listLabelsOnIssue({ owner, repo, issue_number: issueNumber, per_page: 100 });
  const names = parseAt(IssueLabels, reply.data, `GitHub labels of ${owner}/${repo}#${issueNumber}`).map((l) => l.name);
  if (!names.includes(label)) {
    await ensureLabel(octokit, owner, repo, label);
    await octokit.rest.issues.addLabels({ owner, repo, issue_number: issueNumber, labels: [label] });
  }
  for (const name of names) {
    if (!name.startsWith(LABEL_PREFIX) || name === label || name === deps.triggerLabel) continue;
    try {
      await octokit.rest.issues.removeLabel({ owner, repo, issue_number: issueNumber, name });
    } catch (err) {
      if (gitHubStatusOf(err) !== 404) throw err;
    }
  }
}

const knownLabels = new WeakMap<GitHubOctokit, Set<string>>();

/** Creates the label with its colour unless it exists (422); remembered per client so it is asked once. */
async function ensureLabel(octokit: GitHubOctokit, owner: string, repo: string, name: string): Promise<void> {
  const known = knownLabels.get(octokit) ?? new Set<string>();
  knownLabels.set(octokit, known);
  const key = `${owner}/${repo}/${name}`.toLowerCase();
  if (known.has(key)) return;
  const looks = LABEL_LOOKS[name] ?? { color: 'ededed', description: 'Stagegate' };
  try {
    await octokit.rest.issues.createLabel({ owner, repo, name, color: looks.color, description: looks.description });
  } catch (err) {
    if (gitHubStatusOf(err) !== 422) throw err;
  }
  known.add(key);
}

/** The status comment a poster that died may have left, found by its hidden marker. */
async function findStatusComment(octokit: GitHubOctokit, owner: string, repo: string, issueNumber: number, taskId: string): Promise<number | undefined> {
  const marker = statusMarker(taskId);
  const comments = await listAll(octokit.paginate.iterator(octokit.rest.issues.listComments, { owner, repo, issue_number: issueNumber, per_page: 100 }), `comments of ${owner}/${repo}#${issueNumber}`);
  const parsed = parseAt(IssueComments, comments, `GitHub comments of ${owner}/${repo}#${issueNumber}`);
  return parsed.find((c) => c.body?.startsWith(marker) === true)?.id;
}

function isStale(comment: StatusComment, now: Date): boolean {
  return now.getTime() - Date.parse(comment.claimedAt) > STALE_CLAIM_MS;
}

function fingerprint(body: string): string {
  return createHash('sha256').update(body).digest('hex').slice(0, 16);
}

