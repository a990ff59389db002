import type { ReviewRequest } from '../../core/bus/messages.js';
import { untrustedBlock } from '../../core/model/untrusted.js';

export function renderReviewerInput(job: ReviewRequest, diff: string, tests: string): string {
  const plan = job.plan;
  return [
    `# Task\n\n${untrustedBlock('TASK TITLE', job.task.title)}\n\n${untrustedBlock('TASK DESCRIPTION', job.task.body || '(none)')}`,
    `# Approved plan\n\n${plan.summary}\n\n${plan.steps.map((s, i) => `${i + 1}. ${s.title}${s.detail ? `: ${s.detail}` : ''}`).join('\n')}\n\nAcceptance checks:\n${plan.acceptanceChecks.map((c) => `- ${c}`).join('\n')}`,
    `# Change (review round ${job.round}, commit ${job.commit})\n\nCoder's summary: ${job.summary}\n\n\`\`\`diff\n${diff}\n\`\`\``,
    `# Tests\n\n${tests}`,
  ].join('\n\n');
}

/** The security review sees the task, the plan's summary and the change; not the other review's opinion. */
export function renderSecurityInput(job: ReviewRequest, diff: string): string {
  return [
    `# Task\n\n${untrustedBlock('TASK TITLE', job.task.title)}\n\n${untrustedBlock('TASK DESCRIPTION', job.task.body || '(none)')}`,
    `# Approved plan\n\n${job.plan.summary}`,
    `# Change (review round ${job.round}, commit ${job.commit})\n\n\`\`\`diff\n${diff}\n\`\`\``,
  ].join('\n\n');
}
