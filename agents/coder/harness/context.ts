/**
 * What the coder's requests begin with, in the order that keeps a task's prefix cacheable:
 * the instructions and tool definitions (sent first, byte-identical every turn), then one user
 * message holding the task, the plan, the repository view, review comments and people's
 * feedback — rendered once per job from the job and the clone, and never changed while it runs.
 *
 * Nothing volatile goes in: no timestamps, counters, random ids or unsorted listings. The
 * repository view is sorted, and the job's own fields come in a fixed order.
 */
import type { ImplementRequest } from '../../../core/bus/messages.js';
import { untrustedBlock } from '../../../core/model/untrusted.js';

export interface TaskContextInput {
  job: ImplementRequest;
  /** `renderRepoView` of the clone: sorted file list and the files that matter. */
  repoView: string;
  testCommand: string | undefined;
  /** `git log --oneline` of what the branch already holds beyond the base (a resumed task), or ''. */
  branchLog: string;
}

export function renderTaskMessage({ job, repoView, testCommand, branchLog }: TaskContextInput): string {
  const plan = job.plan;
  const steps = plan.steps.map((s, i) => `${i + 1}. ${s.title}${s.detail ? `: ${s.detail}` : ''}`).join('\n');
  const checks = plan.acceptanceChecks.map((c) => `- ${c}`).join('\n') || '- (none listed)';
  const parts = [
    `# Task\n\n${untrustedBlock('TASK TITLE', job.task.title)}\n\n${untrustedBlock('TASK DESCRIPTION', job.task.body || '(none)')}`,
    `# Approved plan\n\n${plan.summary}\n\n${steps}\n\nFiles to touch: ${plan.filesToTouch.join(', ') || '(not listed)'}\nAcceptance checks:\n${checks}`,
    `# Tests\n\n${
      testCommand === undefined
        ? 'No test command was found for this repository; the change is committed when you call finish.'
        : `When you call finish, \`${testCommand}\` runs in the sandbox and must pass; if it fails you get its output and continue.`
    }`,
    `# Repository (branch ${job.branch}, round ${job.round})\n\n${repoView}`,
  ];
  if (branchLog.trim() !== '') {
    parts.push(`# Already on the branch\n\nThe branch already has these commits beyond ${job.task.base} (newest first); build on them:\n\n${branchLog.trim()}`);
  }
  if (job.reviewComments.length > 0) {
    const comments = job.reviewComments.map((c) => `- ${c.file}${c.line === null ? '' : `:${c.line}`}: ${c.body}`).join('\n');
    parts.push(`# Review comments to address\n\n${untrustedBlock('REVIEW COMMENTS', comments)}`);
  }
  if (job.feedback.length > 0) {
    parts.push(`# Feedback from people\n\n${job.feedback.map((f, i) => untrustedBlock(`FEEDBACK ${i + 1}`, f)).join('\n\n')}`);
  }
  if (job.approvedCommands.length > 0) {
    parts.push(`# Commands a person approved for this task\n\nThese may run now, although they match the approval list:\n${job.approvedCommands.map((c) => `- \`${c}\``).join('\n')}`);
  }
  parts.push('Work through the plan with the tools, then call finish.');
  return parts.join('\n\n');
}
