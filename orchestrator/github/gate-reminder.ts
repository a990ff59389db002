/**
 * A gate's reminder timer fired: a new comment on the issue (an edit of the status comment
 * would notify nobody) that mentions who may decide and how. Once per timer event, and only
 * while the gate visit it was for is still open.
 */
import type { Gate, GateTimerFired } from '../../core/bus/messages.js';
import { policyInForce } from '../gate-policy.js';
import { GATE_STATES, type TaskRecord } from '../../core/task-record.js';
import type { StatusDeps } from './status-channel.js';

export async function postGateReminder(deps: StatusDeps, event: GateTimerFired): Promise<void> {
  const record = await deps.tasks.get(event.taskId);
  const source = record.context.spec.source;
  if (source === undefined || !isOpenVisit(record, event.gate, event.visit)) return;
  const stored = await deps.store.load(event.taskId);
  if (stored.value === undefined || (stored.value.reminders ?? []).includes(event.msgId)) return;
  const { owner, repo, issueNumber } = source;
  const octokit = await deps.github.forRepository({ owner, repo, ...(source.installationId === undefined ? {} : { installationId: source.installationId }) });
  await octokit.rest.issues.createComment({ owner, repo, issue_number: issueNumber, body: reminderBody(record, event.gate) });
  await deps.store.save(event.taskId, { ...stored.value, reminders: [...(stored.value.reminders ?? []), event.msgId] }, stored);
  deps.log.info({ taskId: event.taskId, gate: event.gate, visit: event.visit }, 'github gate reminder posted');
}

function isOpenVisit(record: TaskRecord, gate: Gate, visit: number): boolean {
  return record.state === GATE_STATES[gate] && record.context.gateVisits[gate] === visit;
}

export function reminderBody(record: TaskRecord, gate: Gate): string {
  const approvers = policyInForce(record.context, gate).approvers.map(mention);
  return [
    `⏰ Reminder: Stagegate task \`${record.context.taskId}\` is still waiting at the **${gate}** gate.`,
    `Who may decide: ${approvers.join(', ')}.`,
    'Reply `/approve [comment]` to pass it, or `/reject <reason>` to send it back.',
  ].join('\n\n');
}

/** `github:octocat` → `@octocat`, `github-team:org/team` → `@org/team`; other principals as code. */
function mention(principal: string): string {
  if (principal.startsWith('github:')) return `@${principal.slice('github:'.length)}`;
  if (principal.startsWith('github-team:')) return `@${principal.slice('github-team:'.length)}`;
  return `\`${principal}\``;
}
