import type { PlanRequest } from '../../core/bus/messages.js';
import { untrustedBlock } from '../../core/model/untrusted.js';

/** Repository first, task next, feedback last: the part that changes between attempts comes at the end. */
export function renderPlannerInput(job: PlanRequest, repoView: string): string {
  const parts = [
    `# Repository (base branch ${job.task.base})\n\n${repoView}`,
    `# Task\n\n${untrustedBlock('TASK TITLE', job.task.title)}\n\n${untrustedBlock('TASK DESCRIPTION', job.task.body || '(none)')}`,
  ];
  if (job.feedback.length > 0) {
    parts.push(`# Feedback on earlier plans\n\n${job.feedback.map((f, i) => untrustedBlock(`FEEDBACK ${i + 1}`, f)).join('\n\n')}`);
  }
  return parts.join('\n\n');
}
