import type { ReviewRequest } from '../../core/bus/messages.js';
import { untrustedBlock } from '../../core/model/untrusted.js';

/** The repository's instructions first (the same for every review at this base), then the task, plan, change and tests. */
export function renderReviewerInput(job: ReviewRequest, review: { instructions: string; diff: string; tests: string }): string {
  const plan = job.plan;
  return [
    ...(review.instructions === '' ? [] : [review.instructions]),
    `# Task\n\n${untrustedBlock('TASK TITLE', job.task.title)}\n\n${untrustedBlock('TASK DESCRIPTION', job.task.body || '(none)')}`,
    `# Approved plan\n\n${plan.summary}\n\n${plan.steps.map((s, i) => `${i + 1}. ${s.title}${s.detail ? `: ${s.detail}` : ''}`).join('\n')}\n\nAcceptance checks:\n${plan.acceptanceChecks.map((c) => `- ${c}`).join('\n')}`,
    `# Change (review round ${job.round}, commit ${job.commit})\n\nCoder's summary: ${job.summary}\n\n\`\`\`diff\n${review.diff}\n\`\`\``,
    `# Tests\n\n${review.tests}`,
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
