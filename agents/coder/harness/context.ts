/**
 * What the coder's requests begin with, in the order that keeps a task's prefix cacheable:
 * the instructions and tool definitions (sent first, byte-identical every turn), then one user
 * message holding the repository's instruction files (first: the same for every task on the
 * repository at this base), the task, the plan, the checks, the repository view, review comments
 * and people's feedback — rendered once per job from the job and the clone, and never changed
 * while it runs.
 *
 * Nothing volatile goes in: no timestamps, counters, random ids or unsorted listings. The
 * repository view is sorted, and the job's own fields come in a fixed order.
 */
import type { ImplementRequest } from '../../../core/bus/messages.js';
import { untrustedBlock } from '../../../core/model/untrusted.js';
import type { RepoCommands } from '../../../core/repo/commands.js';

export interface TaskContextInput {
  job: ImplementRequest;
  /** `renderRepoInstructions` of the default branch, or '' when it has no instruction files. */
  instructions: string;
  /** `renderRepoView` of the clone: sorted file list and the files that matter. */
  repoView: string;
  /** Lint and test run at finish; build is named for the model to run when it matters. */
  commands: RepoCommands;
  /** `git log --oneline` of what the branch already holds beyond the base (a resumed task), or ''. */
  branchLog: string;
}

export function renderTaskMessage({ job, instructions, repoView, commands, branchLog }: TaskContextInput): string {
  const plan = job.plan;
  const steps = plan.steps.map((s, i) => `${i + 1}. ${s.title}${s.detail ? `: ${s.detail}` : ''}`).join('\n');
  const checks = plan.acceptanceChecks.map((c) => `- ${c}`).join('\n') || '- (none listed)';
  const parts = [
    ...(instructions === '' ? [] : [instructions]),
    `# Task\n\n${untrustedBlock('TASK TITLE', job.task.title)}\n\n${untrustedBlock('TASK DESCRIPTION', job.task.body || '(none)')}`,
    `# Approved plan\n\n${plan.summary}\n\n${steps}\n\nFiles to touch: ${plan.filesToTouch.join(', ') || '(not listed)'}\nAcceptance checks:\n${checks}`,
    `# Checks\n\n${renderChecks(commands)}`,
    `# Repository (branch ${job.branch}, round ${job.round})\n\n${repoView}`,
  ];
  if (branchLog.trim() !== '') {
    parts.push(`# Already on the branch\n\nThe branch already has these commits beyond ${job.task.base} (newest first); build on them:\n\n${branchLog.trim()}`);
  }
  if (job.reviewComments.length > 0) {
    const comments = job.reviewComments.map((c) => `- ${c.commentId === undefined ? '' : `[comment ${c.commentId}] `}${c.file}${c.line === null ? '' : `:${c.line}`}: ${c.body}`).join('\n');
    parts.push(`# Review comments to address\n\n${untrustedBlock('REVIEW COMMENTS', comments)}`);
    if (job.reviewComments.some((c) => c.commentId !== undefined)) {
      parts.push('Comments marked [comment <id>] are from people reviewing the pull request. When you call finish, give one answer per id: addressed (the change does what it asks) or declined, with the reason. Each answer is posted in that comment\'s thread.');
    }
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

/** The checks `finish` runs, in the order it runs them. */
export function finishChecks(commands: RepoCommands): Array<{ kind: 'lint' | 'test'; command: string }> {
  return (['lint', 'test'] as const).flatMap((kind) => (commands[kind] === undefined ? [] : [{ kind, command: commands[kind] }]));
}

/** What `finish` runs, in words for the model. */
export function renderChecks(commands: RepoCommands): string {
  const checks = finishChecks(commands);
  const run =
    checks.length === 0
      ? 'No lint or test command was found for this repository; the change is committed when you call finish.'
      : `When you call finish, ${checks.map((c) => `\`${c.command}\` (${c.kind})`).join(' then ')} run${checks.length === 1 ? 's' : ''} in the sandbox and must pass; if one fails you get its output and continue.`;
  return commands.build === undefined ? run : `${run}\nThe build command is \`${commands.build}\`; finish does not run it, so run it yourself when the change could break the build.`;
}
