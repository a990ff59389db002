import type { ImplementRequest } from '../../core/bus/messages.js';
import { untrustedBlock } from '../../core/model/untrusted.js';

/**
 * Stable parts first (repository, task, plan, review comments), then the attempts of this job
 * in order: each retry appends, so every request starts with the previous one.
 */
export function renderCoderInput(job: ImplementRequest, repoView: string, testCommand: string | undefined, attempts: string[]): string {
  const plan = job.plan;
  const parts = [
    `# Repository (branch ${job.branch})\n\n${repoView}`,
    `# Task\n\n${untrustedBlock('TASK TITLE', job.task.title)}\n\n${untrustedBlock('TASK DESCRIPTION', job.task.body || '(none)')}`,
    `# Approved plan\n\n${plan.summary}\n\n${plan.steps.map((s, i) => `${i + 1}. ${s.title}${s.detail ? `: ${s.detail}` : ''}`).join('\n')}\n\nFiles to touch: ${plan.filesToTouch.join(', ') || '(not listed)'}\nAcceptance checks:\n${plan.acceptanceChecks.map((c) => `- ${c}`).join('\n')}`,
    `# Tests\n\n${testCommand === undefined ? 'No test command was found; the change is committed once the patch applies.' : `After your patch applies, \`${testCommand}\` runs and must pass.`}`,
  ];
  if (job.reviewComments.length > 0) {
    const comments = job.reviewComments.map((c) => `- ${c.file}${c.line === null ? '' : `:${c.line}`}: ${c.body}`).join('\n');
    parts.push(`# Review comments to address (round ${job.round})\n\n${untrustedBlock('REVIEW COMMENTS', comments)}`);
  }
  if (job.feedback.length > 0) {
    parts.push(`# Feedback from people\n\n${job.feedback.map((f, i) => untrustedBlock(`FEEDBACK ${i + 1}`, f)).join('\n\n')}`);
  }
  for (const [i, attempt] of attempts.entries()) parts.push(`# Attempt ${i + 1} failed\n\n${attempt}`);
  return parts.join('\n\n');
}
