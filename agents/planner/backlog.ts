/**
 * A session's backlog from its goal, or a revision of it after an outcome. The reply must be a
 * backlog the session can run (unique ids, known dependencies, no cycle), checked in the reply
 * schema so a broken one gets the model client's repair round.
 */
import type { JobContext, JobOutcome } from '../../core/bus/job-worker.js';
import { Backlog, backlogProblem, type BacklogRequest } from '../../core/bus/messages.js';
import { cloneForJob } from '../../core/git/workspace.js';
import type { ModelClient } from '../../core/model/client.js';
import { loadPrompt } from '../../core/model/load-prompt.js';
import { readRepoInstructions, renderRepoInstructions } from '../../core/repo/instructions.js';
import { keywordsOf, renderRepoView } from '../../core/repo/repo-view.js';
import { renderBacklogInput } from './render-backlog-input.js';

const PROMPT = loadPrompt(import.meta.url, 'backlog-prompt.md');

export async function proposeBacklog(deps: { model: ModelClient; workDir: string }, job: BacklogRequest, ctx: JobContext): Promise<JobOutcome> {
  const ws = await cloneForJob({ repo: job.repo, workDir: deps.workDir, taskId: job.taskId, name: `backlog-${job.revision}-${job.attempt}` });
  await ws.git(['checkout', '--quiet', job.base]);
  const instructions = renderRepoInstructions(await readRepoInstructions(ws.dir, job.base));
  const view = await renderRepoView({ dir: ws.dir, focus: [], keywords: keywordsOf(job.goal) });
  await ctx.progress(job.revision === 1 ? 'asking the model for a backlog' : `asking the model for backlog revision ${job.revision}`);
  const settled = new Set(job.current.filter((i) => i.status === 'done' || i.status === 'running').map((i) => i.id));
  const schema = Backlog.superRefine((backlog, check) => {
    const problem = backlogProblem(backlog, settled);
    if (problem !== undefined) check.addIssue({ code: 'custom', message: problem, path: ['items'] });
  });
  const reply = await deps.model.generateStructured({
    taskId: job.taskId,
    role: 'planner',
    instructions: PROMPT,
    input: renderBacklogInput(job, { instructions, view }),
    schema,
    schemaName: 'backlog',
  });
  await ws.remove();
  return { type: 'backlog.proposed', backlog: reply.value, usage: reply.usage };
}
