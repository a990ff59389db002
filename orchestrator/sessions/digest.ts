/**
 * A session's digest in Markdown: what finished since the last one, what runs, what waits for
 * whom, what remains, and the spend against the budget. Pure: the same record gives the same
 * text, so a redelivered step posts the same digest.
 */
import type { SessionDigest } from '../../core/bus/session-messages.js';
import type { SessionContext, SessionItem, SessionState } from '../../core/session-record.js';

export function renderDigest(context: SessionContext, state: SessionState, reason: SessionDigest['reason'], since: string | null): string {
  const { items } = context;
  const finished = items.filter((i) => i.endedAt !== null && (since === null || i.endedAt > since) && (i.status === 'done' || i.status === 'failed'));
  const running = items.filter((i) => i.status === 'running' && i.waitingFor === undefined);
  const waiting = items.filter((i) => i.status === 'running' && i.waitingFor !== undefined);
  const remaining = items.filter((i) => i.status === 'pending' || i.status === 'failed');
  const lines = [`### Stagegate session ${context.sessionId}: ${state}${reason === 'scheduled' ? '' : ` (${reason})`}`, '', `Goal: ${context.spec.goal}`];
  if (context.pause !== null) lines.push(`Paused: ${context.pause.reason}`);
  if (context.outcome !== null) lines.push(`Outcome: ${context.outcome}`);
  lines.push('', `Done ${items.filter((i) => i.status === 'done').length} of ${items.filter((i) => i.status !== 'dropped').length} item(s).`);
  section(lines, since === null ? 'Finished' : `Finished since ${since}`, finished, (i) => `${i.id}: ${i.status}${i.outcome === undefined ? '' : ` (${i.outcome})`}`);
  section(lines, 'Running', running, (i) => `${i.id} (${i.taskId ?? '?'}, ${i.taskState ?? 'starting'})`);
  section(lines, 'Waiting for people', waiting, (i) => `${i.id} (${i.taskId ?? '?'}): ${i.waitingFor ?? ''}`);
  section(lines, 'Remaining', remaining, (i) => `${i.id}: ${i.title}`);
  lines.push('', `Spend: ${spendLine(context)}`);
  return lines.join('\n');
}

function section(lines: string[], title: string, items: SessionItem[], line: (item: SessionItem) => string): void {
  if (items.length === 0) return;
  lines.push('', `**${title}**`, ...items.map((i) => `- ${line(i)}`));
}

export function spendLine(context: SessionContext): string {
  const { usage, costUsd, spec } = context;
  const tokens = usage.inputTokens + usage.outputTokens;
  const parts = [`${tokens} tokens (${usage.inputTokens} in, ${usage.cachedTokens} cached, ${usage.outputTokens} out) over ${usage.calls} call(s)`];
  if (spec.budget.tokens !== undefined) parts.push(`token budget ${spec.budget.tokens}`);
  parts.push(`$${costUsd.toFixed(4)}${spec.budget.usd === undefined ? '' : ` of $${spec.budget.usd.toFixed(2)}`}`);
  if (spec.budget.until !== undefined) parts.push(`until ${spec.budget.until}`);
  if (context.unpricedModels.length > 0) parts.push(`not priced: ${context.unpricedModels.join(', ')}`);
  return parts.join('; ');
}
