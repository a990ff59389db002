import type { PlanRequest } from '../../core/bus/messages.js';
import { untrustedBlock } from '../../core/model/untrusted.js';

/**
 * The repository's instructions first and its view next (the same for every task on the
 * repository at this base), the task after, feedback last: what changes between attempts comes
 * at the end.
 */
export function renderPlannerInput(job: PlanRequest, repo: { instructions: string; view: string }): string {
  const parts = [
    ...(repo.instructions === '' ? [] : [repo.instructions]),
    `# Repository (base branch ${job.task.base})\n\n${repo.view}`,
    `# Task\n\n${untrustedBlock('TASK TITLE', job.task.title)}\n\n${untrustedBlock('TASK DESCRIPTION', job.task.body || '(none)')}`,
  ];
  if (job.feedback.length > 0) {
    parts.push(`# Feedback on earlier plans\n\n${job.feedback.map((f, i) => untrustedBlock(`FEEDBACK ${i + 1}`, f)).join('\n\n')}`);
  }
  return parts.join('\n\n');
}
