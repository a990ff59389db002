/**
 * What a gate looks like in Slack, from the task record alone: pure, so the same record always
 * renders the same message (which is how the channel knows whether one needs updating).
 * An open gate shows what is to be decided and Approve / Reject buttons whose value names the
 * task, gate and visit; a decided gate shows who passed it and where, without buttons.
 */
import type { types } from '@slack/bolt';
import { CommitSha, isBlockingFinding, type Gate } from '../../../core/bus/messages.js';
import { findingLabel, summarizeFindings, worstFirst } from '../../../core/security/finding-summary.js';
import type { GatePolicy } from '../../../core/policy.js';
import type { TaskRecord } from '../../../core/task-record.js';
import { decidingDecision } from '../../gate-outcome.js';
import { gateStatusOf, isPinnedGate } from '../../gate-policy.js';
import type { GateButtonValue, ReasonModalMetadata } from './payloads.js';

export const APPROVE_ACTION = 'stagegate_approve';
export const REJECT_ACTION = 'stagegate_reject';
/** Named when it was for rejections only; kept, so a modal open across an upgrade still submits. */
export const REASON_MODAL = 'stagegate_reject_reason';
export const REASON_BLOCK = 'reason';
export const REASON_INPUT = 'reason_input';

type Block = types.KnownBlock;

export interface SlackMessage {
  text: string;
  blocks: Block[];
}

/** Section text is limited to 3000 characters by Slack. */
const SECTION_LIMIT = 2900;

/** Escapes what Slack's mrkdwn would read as markup in text that came from people or models. */
export function escapeText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** `slack:U1` → a mention, `slack-group:S1` → a user-group mention, anything else as text. */
export function renderPrincipal(principal: string): string {
  if (principal.startsWith('slack:')) return `<@${principal.slice('slack:'.length)}>`;
  if (principal.startsWith('slack-group:')) return `<!subteam^${principal.slice('slack-group:'.length)}>`;
  return escapeText(principal);
}

const GATE_TITLE: Record<Gate, string> = {
  plan: 'plan gate',
  review: 'review gate',
  deploy: 'deploy gate',
  command: 'command gate',
};

function section(text: string): Block {
  const clipped = text.length > SECTION_LIMIT ? `${text.slice(0, SECTION_LIMIT)}…` : text;
  return { type: 'section', text: { type: 'mrkdwn', text: clipped } };
}

function heading(record: TaskRecord, gate: Gate, verb: string): Block {
  const { taskId, spec } = record.context;
  return section(`*Task \`${taskId}\` ${verb} the ${GATE_TITLE[gate]}*\n*${escapeText(spec.title)}*  ·  ${escapeText(spec.repo)} → \`${escapeText(spec.base)}\``);
}

/** The part a person decides on: the plan, the change and its review, or the command. */
export function gateContent(record: TaskRecord, gate: Gate): string {
  const c = record.context;
  const lines: string[] = [];
  const verdict = () => {
    if (c.verdict === null) return;
    lines.push(`*Reviewer's verdict:* ${c.verdict.decision === 'approve' ? 'approve' : 'changes requested'} — ${escapeText(c.verdict.summary)}`);
    for (const comment of c.verdict.comments.slice(0, 5)) {
      lines.push(`• \`${escapeText(comment.file)}${comment.line === null ? '' : `:${comment.line}`}\` ${escapeText(comment.body)}`);
    }
    if (c.verdict.comments.length > 5) lines.push(`• … and ${c.verdict.comments.length - 5} more`);
  };
  const security = () => {
    const { findings, summary } = c.security;
    if (findings.length === 0 && summary === '') return;
    lines.push(`*Security review:* ${summarizeFindings(findings)}${summary === '' ? '' : ` — ${escapeText(summary)}`}`);
    for (const f of worstFirst(findings).filter(isBlockingFinding).slice(0, 3)) lines.push(`• \`${escapeText(findingLabel(f))}\` ${escapeText(f.description)}`);
    const status = gateStatusOf(record.state, c);
    if (status?.gate === gate && status.securityBlock !== undefined) {
      lines.push(':lock: *Held by high-severity security findings:* only the security group can approve, with a reason (Approve asks for it).');
    }
    if (status?.gate === gate && status.autoApproveRefused !== undefined) lines.push(`_Not auto-approved: ${escapeText(status.autoApproveRefused)}_`);
  };
  const change = () => {
    if (c.implementation === null) return;
    const size = c.facts.linesChanged === undefined ? '' : `, ${c.facts.linesChanged} lines in ${c.facts.changedFiles?.length ?? '?'} files`;
    lines.push(`*Change:* ${escapeText(c.implementation.summary)}`);
    // The branch's head, which approvals are for; a push after the review is said as such.
    const head = c.head ?? c.implementation.commit;
    const pushed = head === c.implementation.commit ? '' : ` (pushed after the review, which saw \`${c.implementation.commit.slice(0, 12)}\`)`;
    lines.push(`*Commit:* \`${head.slice(0, 12)}\` on \`${escapeText(c.branch)}\`${size}${pushed}`);
  };
  switch (gate) {
    case 'plan':
      if (c.plan === null) break;
      lines.push(`*Plan:* ${escapeText(c.plan.summary)}`);
      c.plan.steps.forEach((step, i) => lines.push(`${i + 1}. ${escapeText(step.title)}${step.detail ? ` — ${escapeText(step.detail)}` : ''}`));
      if (c.plan.filesToTouch.length > 0) lines.push(`*Files:* ${c.plan.filesToTouch.map((f) => `\`${escapeText(f)}\``).join(', ')}`);
      if (c.plan.risks.length > 0) lines.push(`*Risks:* ${c.plan.risks.map(escapeText).join('; ')}`);
      break;
    case 'review':
      lines.push(`The reviewer still asks for changes after ${c.reviewRound} review rounds; approve to go on to the deploy gate, or reject to send it back with your reason.`);
      change();
      verdict();
      security();
      break;
    case 'deploy':
      change();
      verdict();
      security();
      break;
    case 'command':
      if (c.pendingCommand === null) break;
      lines.push(`*The coder asks to run:* \`${escapeText(c.pendingCommand.command)}\` (needs approval: matches \`${escapeText(c.pendingCommand.pattern)}\`)`);
      if (c.pendingCommand.notes) lines.push(`*Where it is:* ${escapeText(c.pendingCommand.notes)}`);
      break;
  }
  return lines.length === 0 ? '_nothing recorded to show_' : lines.join('\n');
}

/** Who decides a gate visit: its policy's approvers and quorum (the escalation group's once escalated). */
export type Deciders = Pick<GatePolicy, 'approvers' | 'required'>;

/** Counted approvals so far at this visit and who may decide: shown under the content. */
export function approvalLine(record: TaskRecord, gate: Gate, visit: number, policy: Deciders): string {
  const given = record.context.decisions.filter((d) => d.gate === gate && d.visit === visit && d.counted && d.decision === 'approve');
  const who = policy.approvers.map((p) => (p === '*' ? 'anyone' : renderPrincipal(p))).join(', ');
  const so = given.length === 0 ? '' : `  ·  approved so far by ${given.map((d) => renderPrincipal(d.by)).join(', ')}`;
  return `Approvers: ${who}  ·  ${policy.required} approval${policy.required === 1 ? '' : 's'} needed${so}`;
}

export function openGateMessage(record: TaskRecord, gate: Gate, visit: number, deciders: Deciders): SlackMessage {
  const head = record.context.head;
  const pinned = isPinnedGate(gate) && head !== null && CommitSha.safeParse(head).success ? { sha: head } : {};
  const value: GateButtonValue = { taskId: record.context.taskId, gate, visit, ...pinned };
  const encoded = JSON.stringify(value);
  return {
    text: `Task ${record.context.taskId} waits at the ${GATE_TITLE[gate]}: ${escapeText(record.context.spec.title)}`,
    blocks: [
      heading(record, gate, 'waits at'),
      section(gateContent(record, gate)),
      { type: 'context', elements: [{ type: 'mrkdwn', text: approvalLine(record, gate, visit, deciders) }] },
      {
        type: 'actions',
        block_id: 'stagegate_gate',
        elements: [
          { type: 'button', action_id: APPROVE_ACTION, style: 'primary', text: { type: 'plain_text', text: 'Approve' }, value: encoded },
          { type: 'button', action_id: REJECT_ACTION, style: 'danger', text: { type: 'plain_text', text: 'Reject' }, value: encoded },
        ],
      },
    ],
  };
}

/** The line that replaces the buttons once the visit is over. */
export function outcomeLine(record: TaskRecord, gate: Gate, visit: number): string {
  const decided = decidingDecision(record, gate, visit);
  if (decided !== undefined) {
    const how = decided.decision === 'approve' ? ':white_check_mark: Approved' : ':x: Rejected';
    const why = decided.comment === undefined ? '' : `: ${escapeText(decided.comment)}`;
    return `${how} by ${renderPrincipal(decided.by)} via ${decided.via}${why}`;
  }
  if (record.state === 'cancelled') return `:no_entry_sign: ${escapeText(record.context.error?.reason ?? 'cancelled')}`;
  return `No longer waiting here: the task is ${record.state}`;
}

export function closedGateMessage(record: TaskRecord, gate: Gate, visit: number): SlackMessage {
  const outcome = outcomeLine(record, gate, visit);
  return {
    text: `Task ${record.context.taskId}, ${GATE_TITLE[gate]}: ${outcome}`,
    blocks: [heading(record, gate, 'was at'), section(gateContent(record, gate)), section(outcome)],
  };
}

export function reminderText(record: TaskRecord, gate: Gate, approvers: readonly string[]): string {
  const who = approvers.filter((p) => p !== '*').map(renderPrincipal).join(' ');
  return `:alarm_clock: Reminder: task \`${record.context.taskId}\` (${escapeText(record.context.spec.title)}) still waits at the ${GATE_TITLE[gate]}.${who ? ` ${who}` : ''}`;
}

/** Asks for the reason of a rejection, or of an override of the security findings holding a deploy gate. */
export function reasonModal(value: GateButtonValue, channel: string, decision: 'approve' | 'reject'): types.View {
  const metadata: ReasonModalMetadata = { ...value, channel, decision };
  const verb = decision === 'approve' ? 'Override' : 'Reject';
  const intro =
    decision === 'approve'
      ? `High-severity security findings hold the ${GATE_TITLE[value.gate]} of task \`${value.taskId}\`. Approving overrides them: say why; your reason is recorded on the task and in its audit log.`
      : `Reject the ${GATE_TITLE[value.gate]} of task \`${value.taskId}\`. Your reason goes back to the agent.`;
  return {
    type: 'modal',
    callback_id: REASON_MODAL,
    private_metadata: JSON.stringify(metadata),
    title: { type: 'plain_text', text: verb },
    submit: { type: 'plain_text', text: verb },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      section(intro),
      {
        type: 'input',
        block_id: REASON_BLOCK,
        label: { type: 'plain_text', text: 'Reason' },
        element: { type: 'plain_text_input', action_id: REASON_INPUT, multiline: true, min_length: 1, max_length: 3000 },
      },
    ],
  };
}
