/**
 * The living status comment of a task, as markdown, and the one `stagegate:<state>` label the
 * issue carries. Pure: a task record (and the task's pull request, when one is linked) in,
 * text out. The first line is a hidden marker naming the task, so a process that finds a
 * half-finished claim can look for a comment it may have posted before posting another.
 */
import type { Gate } from '../../core/bus/messages.js';
import { isBlockingFinding, type ForeignCommit, type Usage } from '../../core/bus/messages.js';
import { gateAt, type TaskRecord, type TaskState } from '../../core/task-record.js';
import { findingLabel, summarizeFindings, worstFirst } from '../../core/security/finding-summary.js';
import { gateStatusOf, isPinnedGate, shortSha, staleApprovals } from '../gate-policy.js';

export interface StatusInput {
  record: TaskRecord;
  /** The task's pull request: the slot the PR work fills (see `IssueIndex.linkPullRequest`). */
  pullRequest?: { number: number; url: string };
  /** Who may give commands, for the instructions (`write`). */
  commandPermission: string;
}

export const STATE_LABELS: Record<TaskState, string> = {
  planning: 'stagegate:planning',
  awaitingPlanApproval: 'stagegate:awaiting-approval',
  implementing: 'stagegate:implementing',
  reviewing: 'stagegate:reviewing',
  awaitingChecks: 'stagegate:checks',
  awaitingReviewApproval: 'stagegate:awaiting-approval',
  awaitingDeployApproval: 'stagegate:awaiting-approval',
  awaitingCommandApproval: 'stagegate:awaiting-approval',
  deploying: 'stagegate:deploying',
  done: 'stagegate:done',
  failed: 'stagegate:failed',
  cancelled: 'stagegate:cancelled',
};

export const LABEL_PREFIX = 'stagegate:';

/** Colours and descriptions of the state labels, used when a label is created on first use. */
export const LABEL_LOOKS: Record<string, { color: string; description: string }> = {
  'stagegate:planning': { color: 'c5def5', description: 'Stagegate: the planner is at work' },
  'stagegate:awaiting-approval': { color: 'fbca04', description: 'Stagegate: waiting at a gate for /approve or /reject' },
  'stagegate:implementing': { color: '1d76db', description: 'Stagegate: the coder is at work' },
  'stagegate:reviewing': { color: '5319e7', description: 'Stagegate: the reviewer is at work' },
  'stagegate:checks': { color: 'bfd4f2', description: 'Stagegate: waiting for CI checks' },
  'stagegate:deploying': { color: '0e8a16', description: 'Stagegate: deploying' },
  'stagegate:done': { color: '0e8a16', description: 'Stagegate: done' },
  'stagegate:failed': { color: 'd93f0b', description: 'Stagegate: a stage failed; /retry runs it again' },
  'stagegate:cancelled': { color: 'bfbfbf', description: 'Stagegate: cancelled' },
};

const STATE_WORDS: Record<TaskState, string> = {
  planning: '📝 Planning',
  awaitingPlanApproval: '⏸️ Waiting for approval of the plan',
  implementing: '🛠️ Implementing',
  reviewing: '🔍 Reviewing',
  awaitingChecks: '⏳ Waiting for checks',
  awaitingReviewApproval: '⏸️ Waiting at the review gate',
  awaitingDeployApproval: '⏸️ Waiting for approval to deploy',
  awaitingCommandApproval: '⏸️ Waiting for approval to run a command',
  deploying: '🚀 Deploying',
  done: '✅ Done',
  failed: '❌ Failed',
  cancelled: '🚫 Cancelled',
};

const REJECT_GOES_TO: Record<Gate, string> = {
  plan: 'sends the plan back to the planner with your reason',
  review: 'sends the work back to the coder with your reason',
  deploy: 'sends the work back to the coder with your reason',
  command: 'refuses the command; the coder goes on without it',
};

const APPROVE_DOES: Record<Gate, string> = {
  plan: 'approves the plan; the coder starts',
  review: 'accepts the work as reviewed',
  deploy: 'approves the deploy',
  command: 'lets the coder run the command',
};

/** `Alice pushed 1 commit (abc1234 Fix typo); it is kept and goes into the next review.` */
function describeForeignCommits(commits: readonly ForeignCommit[]): string {
  const byAuthor = new Map<string, ForeignCommit[]>();
  for (const c of commits) {
    const name = c.author.replace(/\s*<[^>]*>$/, '') || c.author;
    byAuthor.set(name, [...(byAuthor.get(name) ?? []), c]);
  }
  const parts = [...byAuthor].map(([name, list]) => `${oneLine(name)} pushed ${list.length} commit${list.length === 1 ? '' : 's'} (${list.map((c) => `\`${c.sha.slice(0, 7)}\` ${oneLine(c.subject)}`).join(', ')})`);
  const them = commits.length === 1 ? 'it is' : 'they are';
  return `${parts.join('; ')}; ${them} kept (never overwritten) and go${commits.length === 1 ? 'es' : ''} into the next review.`;
}

/** A push someone made to the branch after Stagegate's last commit, while it is still the head. */
function pushSinceStagegate(record: TaskRecord): string | undefined {
  const { head, lastPush, implementation } = record.context;
  if (lastPush === null || head !== lastPush.sha || implementation === null || implementation.commit === head) return undefined;
  return `${personOf(lastPush.by)} moved the branch to \`${shortSha(head)}\`. It is kept (never overwritten), a deploy approval must be for it, and it goes into the next review.`;
}

export function statusMarker(taskId: string): string {
  return `<!-- stagegate:status ${taskId} -->`;
}

export function renderStatusComment(input: StatusInput): string {
  const { record } = input;
  const c = record.context;
  const out: string[] = [
    statusMarker(c.taskId),
    `### Stagegate: ${oneLine(c.spec.title)}`,
    '',
    `**${STATE_WORDS[record.state]}** · task \`${c.taskId}\` · branch \`${c.branch}\` · base \`${c.spec.base}\``,
  ];

  if (c.plan !== null) {
    const done = c.implementation !== null;
    out.push('', '**Plan**', '', quote(c.plan.summary), '');
    for (const step of c.plan.steps) {
      const detail = step.detail.trim() === '' ? '' : ` — ${oneLine(step.detail)}`;
      out.push(`- [${done ? 'x' : ' '}] ${oneLine(step.title)}${detail}`);
    }
  }

  out.push(...gateSection(input));

  const reviews = c.stages.filter((s) => s.stage === 'review' && s.outcome !== null);
  if (reviews.length > 0) {
    out.push('', '**Review**', '');
    reviews.forEach((s, i) => out.push(`- Round ${i + 1}: ${s.outcome}`));
    if (c.verdict !== null) {
      const comments = c.verdict.comments.length;
      const risk = c.verdict.risk === undefined ? '' : `, risk ${c.verdict.risk}`;
      out.push(`- Latest verdict: ${c.verdict.decision === 'approve' ? 'approved' : 'changes requested'}${risk} — ${oneLine(c.verdict.summary)}${comments === 0 ? '' : ` (${comments} comment${comments === 1 ? '' : 's'})`}`);
    }
    out.push(...securityLines(record));
  }

  if (c.ci.note !== null) out.push('', `**Checks:** ${oneLine(c.ci.note)}`);
  if (c.update !== null && record.state === 'implementing') {
    const why = c.update.conflicts ? 'the pull request conflicts with it' : 'the pull request is behind it';
    const how =
      c.update.strategy === 'rebase'
        ? `rebases Stagegate's commits onto ${c.spec.base} (a branch holding a person's commit is merged instead: those are never rewritten)`
        : `merges ${c.spec.base} into the branch (nothing on the branch is rewritten)`;
    out.push('', `**Update:** ${c.spec.base} moved on and ${why}; the coder ${how}, then the result is reviewed again.`);
  }
  if (c.foreignCommits.length > 0) out.push('', `**Commits by people:** ${describeForeignCommits(c.foreignCommits)}`);
  const push = pushSinceStagegate(record);
  if (push !== undefined) out.push('', `**Pushed since Stagegate's last commit:** ${push}`);
  // Only while the task waits at a gate: once a person decided, the loop breaker has done its job.
  if (c.reviewerRounds.note !== null && gateAt(record.state) !== undefined) out.push('', `**Review comments:** ${oneLine(c.reviewerRounds.note)}`);

  const decisions = c.decisions.filter((d) => d.counted);
  if (decisions.length > 0) {
    out.push('', '**Decisions**', '');
    for (const d of decisions) {
      const comment = d.comment === undefined ? '' : ` — ${oneLine(d.comment)}`;
      out.push(`- ${d.gate} gate: ${d.decision === 'approve' ? 'approved' : 'rejected'} by ${d.by} via ${d.via}${comment}`);
    }
  }

  out.push('');
  out.push(`**Pull request:** ${input.pullRequest === undefined ? 'not opened yet' : `#${input.pullRequest.number} (${input.pullRequest.url})`}`);
  if (c.deployed !== null) out.push(`**Deploy:** \`${c.deployed.commit}\` deployed to \`${oneLine(c.deployed.target)}\``);
  else if (record.state === 'deploying') out.push('**Deploy:** under way');
  out.push(`**Tokens:** ${formatUsage(c.usage)}`);

  if (record.state === 'failed' && c.error !== null) {
    out.push('', `**The ${c.error.stage} stage failed:** ${oneLine(c.error.reason)}`, '', `Comment \`/retry\` to run the ${c.error.stage} stage again, or \`/cancel\` to stop the task.`);
  }
  if (record.state === 'cancelled' && c.error !== null) out.push('', `**Cancelled:** ${oneLine(c.error.reason)}`);
  out.push('', `<sub>Commands (on this issue, by people with ${input.commandPermission} permission or more): \`/approve [sha] [comment]\`, \`/reject <reason>\`, \`/retry\`, \`/cancel [reason]\`, \`/status\`</sub>`);
  return out.join('\n');
}

function gateSection(input: StatusInput): string[] {
  const { record } = input;
  const gate = gateStatusOf(record.state, record.context);
  if (gate === undefined) return [];
  const out = ['', `**Waiting at the ${gate.gate} gate**${gate.escalated ? ' (escalated)' : ''}: ${gate.approvals} of ${gate.required} approval${gate.required === 1 ? '' : 's'}; approvers ${gate.approvers.map((a) => `\`${a}\``).join(', ')}`];
  if (gate.missing !== undefined) out.push(`Still needed: ${oneLine(gate.missing)}`);
  out.push(...pinnedLines(record, gate.gate));
  if (gate.securityBlock !== undefined) out.push('Held by high-severity security findings: `/approve <reason>` from the security group overrides them; the reason is recorded.');
  if (gate.autoApproveRefused !== undefined) out.push(`Not auto-approved: ${oneLine(gate.autoApproveRefused)}`);
  const pending = record.context.pendingCommand;
  if (gate.gate === 'command' && pending !== null) out.push(`The coder wants to run \`${oneLine(pending.command)}\` (matches \`${oneLine(pending.pattern)}\`).`);
  const head = record.context.head;
  const approve =
    isPinnedGate(gate.gate) && head !== null
      ? `- \`/approve\` ${APPROVE_DOES[gate.gate]} of \`${shortSha(head)}\`, the head of the branch; \`/approve ${shortSha(head)}\` names it, so a push made meanwhile is not approved by mistake (add a comment after either if you like)`
      : `- \`/approve\` ${APPROVE_DOES[gate.gate]} (add a comment after it if you like)`;
  out.push('', 'Comment on this issue:', approve, `- \`/reject <reason>\` ${REJECT_GOES_TO[gate.gate]}`);
  return out;
}

/** At a gate whose approvals are pinned to the head: which head they count for, and which went stale with a push. */
function pinnedLines(record: TaskRecord, gate: Gate): string[] {
  const head = record.context.head;
  if (!isPinnedGate(gate) || head === null) return [];
  const out = [`Approvals count for \`${shortSha(head)}\`, the head of \`${oneLine(record.context.branch)}\`, only: a push to the branch makes them stale.`];
  for (const d of staleApprovals(record.context, gate)) {
    out.push(`- approval by ${personOf(d.by)} for ${d.sha === undefined ? 'an earlier head' : shortSha(d.sha)} is stale: the branch moved to ${shortSha(head)}`);
  }
  return out;
}

/** A GitHub decider as `@login` (they need to approve again); anyone else as recorded. */
function personOf(by: string): string {
  const login = /^github:([A-Za-z0-9][A-Za-z0-9-]{0,38})$/.exec(by)?.[1];
  return login === undefined ? oneLine(by) : `@${login}`;
}

/** The latest security review: its count, and the findings at high severity or above. */
function securityLines(record: TaskRecord): string[] {
  const { findings, summary } = record.context.security;
  if (findings.length === 0 && summary === '') return [];
  const out = [`- Security review: ${summarizeFindings(findings)}${summary === '' ? '' : ` — ${oneLine(summary)}`}`];
  const serious = worstFirst(findings).filter(isBlockingFinding);
  for (const f of serious.slice(0, 5)) out.push(`  - \`${oneLine(findingLabel(f)).replace(/`/g, "'")}\` ${oneLine(f.description)}`);
  if (serious.length > 5) out.push(`  - … and ${serious.length - 5} more`);
  return out;
}

/** The answer to `/status`: where the task stands, in a few lines (no marker: it is not the status comment). */
export function renderStatusReply(record: TaskRecord, pullRequest?: { number: number; url: string }): string {
  const c = record.context;
  const lines = [`task \`${c.taskId}\` is **${STATE_WORDS[record.state]}** (\`${record.state}\`), branch \`${c.branch}\`.`, ''];
  const gate = gateStatusOf(record.state, c);
  if (gate !== undefined) {
    lines.push(`- Gate: ${gate.gate}, ${gate.approvals} of ${gate.required} approvals; \`/approve\` or \`/reject <reason>\``);
  }
  for (const s of c.stages) lines.push(`- ${s.stage} #${s.attempt}: ${s.outcome ?? 'running'}`);
  if (pullRequest !== undefined) lines.push(`- Pull request: #${pullRequest.number}`);
  if (c.deployed !== null) lines.push(`- Deployed \`${c.deployed.commit}\` to \`${oneLine(c.deployed.target)}\``);
  if (record.state === 'failed' && c.error !== null) lines.push(`- Failed at the ${c.error.stage} stage: ${oneLine(c.error.reason)}; \`/retry\` runs it again`);
  lines.push(`- Tokens: ${formatUsage(c.usage)}`);
  return lines.join('\n');
}

export function formatUsage(usage: Usage): string {
  return `${usage.inputTokens + usage.outputTokens} (${usage.inputTokens} in, ${usage.cachedTokens} of them cached, ${usage.outputTokens} out) over ${usage.calls} model call${usage.calls === 1 ? '' : 's'}`;
}

/** Model and issue text on one line, with nothing that could close the hidden marker or ping anyone. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/<!--|-->/g, '').replace(/@(?=\w)/g, '@\u200b').trim();
}

function quote(text: string): string {
  return text
    .trim()
    .split('\n')
    .map((line) => `> ${line.replace(/<!--|-->/g, '').replace(/@(?=\w)/g, '@\u200b')}`)
    .join('\n');
}
