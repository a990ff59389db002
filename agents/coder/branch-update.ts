/**
 * Bringing a task's branch up to date with its base, in the coder's clone. By default the base is
 * merged into the branch. With the `rebase` strategy, Stagegate's commits are replayed onto the
 * base instead, but only while the branch holds no person's commit (a person's work is never
 * rewritten; such a branch is merged); the result replaces the branch with a lease on the tip it
 * replaces, which the git gateway checks (`push-check.ts`). What git cannot merge or replay on
 * its own is left in the files with conflict markers for the model to resolve with its tools;
 * `finish` is refused while a marker or an unmerged path remains, and a rebase moves on to its
 * next commit each time one is resolved. Also here: the commits on the branch Stagegate did not make.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ForeignCommit, ImplementRequest } from '../../core/bus/messages.js';
import { isStagegateError } from '../../core/errors.js';
import { STAGEGATE_EMAIL } from '../../core/git/git.js';
import type { Workspace } from '../../core/git/workspace.js';
import { untrustedBlock } from '../../core/model/untrusted.js';
import { describeConflictPlaces, markerLines, parseConflictHunks, renderConflictHunks, type ConflictedFile } from './conflicts.js';

const FIELD = '\u001f';

/** Commits from the base to HEAD that Stagegate's identity did not both author and commit (a person's, or one a person amended), oldest first. */
export async function foreignCommitsOn(ws: Workspace, base: string): Promise<ForeignCommit[]> {
  const out = await ws.git(['log', '--reverse', `--format=%H${FIELD}%an${FIELD}%ae${FIELD}%s${FIELD}%ce`, `${base}..HEAD`]);
  return out
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split(FIELD))
    .filter(([, , email, , committer]) => email !== STAGEGATE_EMAIL || committer !== STAGEGATE_EMAIL)
    .map(([sha = '', name = '', email = '', subject = '']) => ({ sha, author: `${name} <${email}>`, subject }));
}

export type UpdateOutcome = { kind: 'up-to-date' } | { kind: 'updated'; commit: string } | { kind: 'conflicts'; files: ConflictedFile[] };

/** Git's editor for the messages of merges and replayed commits: keep the message as it is. */
const KEEP_MESSAGE = ['-c', 'core.editor=true'];

/** Merges `origin/<base>` into the checked-out branch: a merge commit when it merges cleanly, else the conflicts. */
export async function mergeFromBase(ws: Workspace, job: ImplementRequest): Promise<UpdateOutcome> {
  const base = `origin/${job.task.base}`;
  return updateWith(ws, ['merge', '--no-ff', '--no-edit', '-m', `Merge ${job.task.base} into ${job.branch}\n\nStagegate-Task: ${job.taskId} (round ${job.round})`, base]);
}

/** Replays the branch's commits onto `origin/<base>`: done when every one applies, else the first commit's conflicts. */
export async function rebaseOntoBase(ws: Workspace, job: ImplementRequest): Promise<UpdateOutcome> {
  return updateWith(ws, [...KEEP_MESSAGE, 'rebase', '--quiet', `origin/${job.task.base}`]);
}

/**
 * Stages the resolution of the commit a rebase stopped at and replays the rest: the next
 * commit's conflicts, or done. A commit the resolution left empty (the base already had its
 * change) is dropped, as git would.
 */
export async function continueRebase(ws: Workspace): Promise<UpdateOutcome> {
  await ws.git(['add', '--all']);
  const empty = (await ws.git(['diff', '--cached', '--name-only', 'HEAD'])).trim() === '';
  return updateWith(ws, [...KEEP_MESSAGE, 'rebase', empty ? '--skip' : '--continue']);
}

async function updateWith(ws: Workspace, args: string[]): Promise<UpdateOutcome> {
  const before = await headOf(ws);
  try {
    await ws.git(args);
  } catch (err) {
    if (!isStagegateError(err, 'GIT_FAILED')) throw err;
    const paths = await unmergedPaths(ws);
    if (paths.length === 0) throw err;
    return { kind: 'conflicts', files: await Promise.all(paths.map(async (path) => ({ path, hunks: parseConflictHunks(await readText(ws, path)) }))) };
  }
  const after = await headOf(ws);
  return after === before ? { kind: 'up-to-date' } : { kind: 'updated', commit: after };
}

/** The conflicted files that still hold markers (with where), for the model and for a failure; empty when resolved. */
export async function unresolvedConflicts(ws: Workspace, conflicted: readonly ConflictedFile[]): Promise<ConflictedFile[]> {
  const left: ConflictedFile[] = [];
  for (const file of conflicted) {
    const text = await readText(ws, file.path).catch(() => '');
    const hunks = parseConflictHunks(text);
    if (hunks.length > 0) left.push({ path: file.path, hunks });
    else if (markerLines(text).length > 0) left.push({ path: file.path, hunks: markerLines(text).map((line) => ({ startLine: line, endLine: line, ours: [], theirs: [] })) });
  }
  return left;
}

/** Stages the resolution; paths git still counts as unmerged afterwards (a deleted-on-one-side file left alone) stay conflicts. */
export async function stageResolution(ws: Workspace): Promise<string[]> {
  await ws.git(['add', '--all']);
  return unmergedPaths(ws);
}

/** A merge is under way (MERGE_HEAD exists): its commit is still to be made. */
export async function isMerging(ws: Workspace): Promise<boolean> {
  return gitPathExists(ws, 'MERGE_HEAD');
}

/** A rebase stopped at a commit and has more to replay. */
export async function isRebasing(ws: Workspace): Promise<boolean> {
  return (await gitPathExists(ws, 'rebase-merge')) || (await gitPathExists(ws, 'rebase-apply'));
}

async function gitPathExists(ws: Workspace, name: string): Promise<boolean> {
  const path = (await ws.git(['rev-parse', '--git-path', name])).trim();
  return stat(join(ws.dir, path)).then(
    () => true,
    () => false,
  );
}

/** Concludes a resolved merge with git's own merge message and the task's trailer. */
export async function commitMerge(ws: Workspace, job: ImplementRequest): Promise<string> {
  await ws.git(['add', '--all']);
  await ws.git(['commit', '--quiet', '-m', `Merge ${job.task.base} into ${job.branch}\n\nConflicts resolved by the coder.\n\nStagegate-Task: ${job.taskId} (round ${job.round})`]);
  return headOf(ws);
}

/** What the model is told in an update round: the merge, what stands in its way, and how it ends. */
export function renderUpdateMessage(input: {
  job: ImplementRequest;
  instructions: string;
  checks: string;
  conflicts: readonly ConflictedFile[];
  checkFailure?: string;
  foreign: readonly ForeignCommit[];
  /** The branch is being rebased onto the base rather than merged with it. */
  rebasing: boolean;
}): string {
  const { job } = input;
  const parts = [...(input.instructions === '' ? [] : [input.instructions])];
  const how = input.rebasing
    ? `The branch's commits are being replayed onto ${job.task.base} one at a time (a rebase) in your worktree; the task now is to finish that rebase, not to change anything else. When you call finish, the resolved commit is kept and the rebase moves on: if a later commit conflicts too, finish says where.`
    : `It has been merged into the branch in your worktree; the task now is to finish that merge, not to change anything else.`;
  parts.push(`# Task\n\n${untrustedBlock('TASK TITLE', job.task.title)}\n\nThe base branch ${job.task.base} has moved on since this branch (${job.branch}) was reviewed. ${how}`);
  if (input.conflicts.length > 0) {
    parts.push(
      `# Conflicts to resolve\n\nThese files hold conflict markers (\`<<<<<<<\`, \`=======\`, \`>>>>>>>\`) where the branch and ${job.task.base} changed the same lines: ${describeConflictPlaces(input.conflicts)}. Read each file, edit it so it keeps what both sides meant (the branch's change applied on top of the base's), and leave no marker behind.\n\n${untrustedBlock('CONFLICT HUNKS', renderConflictHunks(input.conflicts))}`,
    );
  }
  const update = input.rebasing ? 'rebase' : 'merge';
  if (input.checkFailure !== undefined) parts.push(`# The checks fail after the ${update}\n\n${untrustedBlock('CHECK OUTPUT', input.checkFailure)}\n\nFix what the ${update} broke.`);
  if (input.foreign.length > 0) {
    parts.push(`# Commits by people on the branch\n\nKeep them: they are part of the change.\n${input.foreign.map((c) => `- ${c.sha.slice(0, 10)} ${c.subject} (${c.author})`).join('\n')}`);
  }
  parts.push(`# Checks\n\n${input.checks}`, `Resolve the ${update} with the tools, then call finish; it is refused while any conflict marker remains.`);
  return parts.join('\n\n');
}

async function unmergedPaths(ws: Workspace): Promise<string[]> {
  return (await ws.git(['diff', '--name-only', '--diff-filter=U'])).split('\n').filter((p) => p !== '');
}

async function headOf(ws: Workspace): Promise<string> {
  return (await ws.git(['rev-parse', 'HEAD'])).trim();
}

function readText(ws: Workspace, path: string): Promise<string> {
  return readFile(join(ws.dir, path), 'utf8');
}
