/** A git repository with one file and no test command: for tests about orchestration, not code. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { git } from '../../core/git/git.js';
import type { Plan, Verdict } from '../../core/bus/messages.js';
import type { AnswerFn } from '../../core/scripted-model/index.js';

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
  reviewer: (() => ({ json: approve })) satisfies AnswerFn,
};

function functionCall(id: string, name: string, args: Record<string, unknown>) {
  return { type: 'function_call', id: `fc_${id}`, call_id: `call_${id}`, name, arguments: JSON.stringify(args), status: 'completed' };
}
