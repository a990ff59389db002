/** A git repository with one file and no test command: for tests about orchestration, not code. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { git } from '../../core/git/git.js';
import { z } from 'zod';
import type { Plan, Verdict } from '../../core/bus/messages.js';
import type { AnswerFn, RecordedRequest } from '../../core/scripted-model/index.js';

export async function createSmallRepo(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-small-'));
  await writeFile(join(dir, 'README.md'), '# small\n');
  await git(['init', '--quiet', '--initial-branch=main'], { cwd: dir });
  await git(['config', 'receive.denyCurrentBranch', 'updateInstead'], { cwd: dir });
  await git(['add', '--all'], { cwd: dir });
  await git(['commit', '--quiet', '-m', 'initial'], { cwd: dir });
  return dir;
}

const plan: Plan = { summary: 'add a note', steps: [{ title: 'write the note', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] };
const approve: Verdict = { decision: 'approve', summary: 'fine', comments: [] };
/** The security review's reply when it found nothing. */
export const noFindings = { summary: 'nothing found', findings: [] };

const NamedFormat = z.object({ text: z.object({ format: z.object({ name: z.string() }) }) });

/** The reviewer's second call of a review: the one with the security brief's schema. */
export function isSecurityReview(request: RecordedRequest): boolean {
  const parsed = NamedFormat.safeParse(request.body);
  return parsed.success && parsed.data.text.format.name === 'security_review';
}

/**
 * Answers that fit any task on a small repo. The coder does its job in one turn: an apply_patch
 * call adding `notes/<task>.md`, then finish (the repo has no tests to run), so each coder job
 * makes exactly one model request.
 */
export const smallRepoAnswers = {
  planner: (() => ({ json: plan })) satisfies AnswerFn,
  coder: ((request) => ({
    output: [
      functionCall(`${request.index}_patch`, 'apply_patch', { patch: `*** Begin Patch\n*** Add File: notes/${request.taskId}.md\n+done\n*** End Patch` }),
      functionCall(`${request.index}_finish`, 'finish', { summary: 'note added' }),
    ],
  })) satisfies AnswerFn,
  /** Either call of a review, by what it asks for: reviews running at once may take them in any order. */
  reviewer: ((request) => ({ json: isSecurityReview(request) ? noFindings : approve })) satisfies AnswerFn,
};

/** A review asks the model twice (the verdict, then the security review): the reviewer answers for `count` reviews. */
export function smallRepoReviews(count = 1): AnswerFn[] {
  return Array<AnswerFn>(count * 2).fill(smallRepoAnswers.reviewer);
}

/** A Responses API function call item, as the scripted model answers with it. */
export function functionCall(id: string, name: string, args: Record<string, unknown>) {
  return { type: 'function_call', id: `fc_${id}`, call_id: `call_${id}`, name, arguments: JSON.stringify(args), status: 'completed' };
}
