import type { JobHandler } from '../../core/bus/job-worker.js';
import { Plan } from '../../core/bus/messages.js';
import { cloneForJob } from '../../core/git/workspace.js';
import type { ModelClient } from '../../core/model/client.js';
import { loadPrompt } from '../../core/model/load-prompt.js';
import { readRepoInstructions, renderRepoInstructions } from '../../core/repo/instructions.js';
import { keywordsOf, renderRepoView } from '../../core/repo/repo-view.js';
import { proposeBacklog } from './backlog.js';
import { renderPlannerInput } from './render-input.js';

const PROMPT = loadPrompt(import.meta.url);

export function createPlannerHandler(deps: { model: ModelClient; workDir: string }): JobHandler<'planner'> {
  return async (job, ctx) => {
    if (job.type === 'backlog.request') return proposeBacklog(deps, job, ctx);
    const ws = await cloneForJob({ repo: job.task.repo, workDir: deps.workDir, taskId: job.taskId, name: `plan-${job.attempt}` });
    await ws.git(['checkout', '--quiet', job.task.base]);
    const instructions = renderRepoInstructions(await readRepoInstructions(ws.dir, job.task.base));
    const view = await renderRepoView({ dir: ws.dir, focus: [], keywords: keywordsOf(job.task.title, job.task.body) });
    await ctx.progress('asking the model for a plan');
    const reply = await deps.model.generateStructured({
      taskId: job.taskId,
      role: 'planner',
      instructions: PROMPT,
      input: renderPlannerInput(job, { instructions, view }),
      schema: Plan,
      schemaName: 'plan',
    });
    await ws.remove();
    return { type: 'plan.proposed', plan: reply.value, usage: reply.usage };
  };
}
