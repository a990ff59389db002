/** How tasks read in a terminal: one place, so `status`, `logs` and the demo agree. */
import type { TaskLogEntry, Usage } from '../core/bus/messages.js';
import type { TaskRecord } from '../core/task-record.js';
import { policyFor } from '../core/policy.js';
import { findingLabel, summarizeFindings, worstFirst } from '../core/security/finding-summary.js';
import { gateStatusOf } from '../orchestrator/gate-policy.js';

export function formatTokens(usage: Usage): string {
  const queued = usage.queueWaitMs === undefined || usage.queueWaitMs === 0 ? '' : `, ${formatDuration(usage.queueWaitMs)} queued for the model`;
  return `${usage.calls} model call${usage.calls === 1 ? '' : 's'}, ${k(usage.inputTokens)} in (${k(usage.cachedTokens)} cached), ${k(usage.outputTokens)} out${queued}`;
}

/** One model call's tokens with its cache ratio: `12.3k in, 92% cached, 210 out`. */
export function formatTurnUsage(usage: Usage): string {
  const ratio = usage.inputTokens === 0 ? 0 : Math.round((100 * usage.cachedTokens) / usage.inputTokens);
  const calls = usage.calls === 1 ? '' : `${usage.calls} calls, `;
  const queued = usage.queueWaitMs === undefined || usage.queueWaitMs === 0 ? '' : `, queued ${formatDuration(usage.queueWaitMs)}`;
  return `${calls}${k(usage.inputTokens)} in, ${ratio}% cached, ${k(usage.outputTokens)} out${queued}`;
}

function k(n: number): string {
  return n >= 10_000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function stageDurationMs(stage: { startedAt: string; endedAt: string | null }): number | null {
  return stage.endedAt === null ? null : Date.parse(stage.endedAt) - Date.parse(stage.startedAt);
}

export function formatTaskLine(record: TaskRecord): string {
  const c = record.context;
  return `${c.taskId}  ${record.state.padEnd(22)}  ${c.spec.title}  (${c.spec.repo})`;
}

/** `deadLetters`: messages to the task no orchestrator could handle (`stagegate dead-letters`). */
export function formatTask(record: TaskRecord, deadLetters = 0): string {
  const c = record.context;
  const lines = [
    `task ${c.taskId}: ${c.spec.title}`,
    `  state:    ${record.state}`,
    `  repo:     ${c.spec.repo} (base ${c.spec.base}, branch ${c.branch})`,
    `  usage:    ${formatTokens(c.usage)}`,
  ];
  const sanitized = (c.spec.sanitized ?? []).map(({ field, removed }) => `${field}: ${removed.map((r) => `${r.count} ${r.kind} (${r.sample})`).join(', ')}`);
  if (sanitized.length > 0) lines.push(`  hidden content removed: ${sanitized.join('; ')}`);
  if (c.plan !== null) lines.push(`  plan:     ${c.plan.summary}`);
  if (c.error !== null) lines.push(`  error:    ${c.error.stage}: ${c.error.reason}`);
  if (deadLetters > 0) {
    lines.push(`  dead letters: ${deadLetters} message${deadLetters === 1 ? '' : 's'} to this task could not be handled; see stagegate dead-letters --task ${c.taskId}`);
  }
  if (c.deployed !== null) lines.push(`  deployed: ${c.deployed.commit} to ${c.deployed.target}`);
  if (c.security.findings.length > 0 || c.security.summary !== '') {
    lines.push(`  security: ${summarizeFindings(c.security.findings)}${c.security.summary === '' ? '' : ` — ${c.security.summary}`}`);
    for (const f of worstFirst(c.security.findings).slice(0, 10)) lines.push(`            ${findingLabel(f)}: ${f.description}`);
    if (c.security.findings.length > 10) lines.push(`            … and ${c.security.findings.length - 10} more`);
  }
  const gate = gateStatusOf(record.state, c);
  if (gate !== undefined) {
    const escalated = gate.escalated ? ', escalated' : '';
    const blocked = gate.securityBlock === undefined ? '' : ', held by security findings';
    lines.push(`  gate:     ${gate.gate} (visit ${gate.visit}): ${gate.approvals} of ${gate.required} approvals${escalated}${blocked}; approvers ${gate.approvers.join(', ')}`);
    if (gate.missing !== undefined) lines.push(`            needs: ${gate.missing}`);
    if (gate.autoApproveRefused !== undefined) lines.push(`            not auto-approved: ${gate.autoApproveRefused}`);
    const onExpire = policyFor(c.policies, gate.gate).timeout?.onExpire;
    for (const t of gate.timers) {
      const then = t.kind === 'expire' && onExpire !== undefined ? ` then ${onExpire}` : '';
      lines.push(`            ${t.kind} at ${t.fireAt}${then}${t.firedAt === null ? '' : ` (fired ${t.firedAt})`}`);
    }
  }
  lines.push('  stages:');
  for (const s of c.stages) {
    const took = stageDurationMs(s);
    lines.push(`    ${s.stage.padEnd(9)} #${s.attempt}  ${(s.outcome ?? 'running').padEnd(17)}  ${took === null ? '' : formatDuration(took).padEnd(8)}  ${formatTokens(s.usage)}`);
  }
  if (c.decisions.length > 0) {
    lines.push('  decisions:');
    for (const d of c.decisions) {
      const note = d.counted ? '' : `  (not counted: ${d.note})`;
      const override = d.securityOverride === true ? ' (security override)' : '';
      lines.push(`    ${d.gate} gate: ${d.decision}${override} by ${d.by} via ${d.via}${d.comment ? ` — ${d.comment}` : ''}${note}`);
    }
  }
  return lines.join('\n');
}

export function formatLogEntry(entry: TaskLogEntry): string {
  const time = entry.sentAt.slice(11, 23);
  if (entry.type === 'agent.progress') {
    const usage = entry.usage === undefined ? '' : `  [${formatTurnUsage(entry.usage)}]`;
    return `${time}  ${entry.role.padEnd(8)}  ${entry.message}${usage}`;
  }
  const e = entry.event;
  const what = describeEvent(e);
  const passed = (entry.autoApproved ?? []).map((gate) => `→ ${gate} gate auto-approved by policy`);
  if (entry.securityOverride !== undefined) passed.unshift(`→ overrides ${summarizeFindings(entry.securityOverride.findings)}`);
  const status = entry.accepted ? [...passed, `→ ${entry.state}`].join(' ') : `(not applied: ${entry.note ?? 'ignored'})`;
  return `${time}  ${'task'.padEnd(8)}  ${what} ${status}`;
}

function describeEvent(e: Extract<TaskLogEntry, { type: 'task.event' }>['event']): string {
  switch (e.type) {
    case 'task.submit':
      return `submitted by ${e.spec.submittedBy}: ${e.spec.title}`;
    case 'plan.proposed':
      return `plan proposed: ${e.plan.summary} [${formatTokens(e.usage)}]`;
    case 'code.committed':
      return `committed ${e.commit.slice(0, 10)} on ${e.branch} after ${e.attempts} attempt(s)${(e.foreignCommits?.length ?? 0) === 0 ? '' : ` (keeping ${e.foreignCommits?.length} commit(s) not by Stagegate)`} [${formatTokens(e.usage)}]`;
    case 'review.approved':
    case 'review.changes_requested':
      return `review: ${e.verdict.decision} — ${e.verdict.summary}${e.security === undefined ? '' : `; security: ${summarizeFindings(e.security.findings)}`} [${formatTokens(e.usage)}]`;
    case 'deploy.succeeded':
      return `deployed ${e.commit.slice(0, 10)} to ${e.target}`;
    case 'command.approval_requested':
      return `coder asks to run \`${e.command}\` (needs approval: matches ${e.pattern})`;
    case 'job.failed':
      return `${e.stage} failed: ${e.reason}`;
    case 'gate.decide':
      return `${e.gate} gate: ${e.decision} by ${e.by} via ${e.via}${e.sha === undefined ? '' : ` for ${e.sha.slice(0, 7)}`}${e.comment ? ` (${e.comment})` : ''}`;
    case 'gate.timer_fired':
      return `${e.gate} gate: ${e.kind === 'remind' ? 'reminder' : 'timeout'} (due ${e.fireAt})`;
    case 'task.cancel':
      return `cancelled by ${e.by}: ${e.reason}`;
    case 'task.retry':
      return `retry asked by ${e.by}`;
    case 'review.human_changes_requested':
      return `changes requested on the pull request by ${e.by} (${e.comments.length} comment${e.comments.length === 1 ? '' : 's'})`;
    case 'checks.reported':
      return `checks on ${e.commit.slice(0, 10)}: ${e.verdict}${e.baseRed ? ' (the base branch is red too)' : ''} — ${e.summary}`;
    case 'branch.moved':
      return `${e.branch} moved to ${e.sha.slice(0, 10)}${e.by === undefined ? '' : ` (pushed by ${e.by})`}`;
    case 'base.moved':
      return `the pull request at ${e.head.slice(0, 10)} ${e.mergeableState === 'dirty' ? 'conflicts with' : 'is behind'} its base (at ${e.baseSha.slice(0, 10)})`;
  }
}
