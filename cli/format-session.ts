/** How sessions read in a terminal: the backlog as a tree (each item under the last item it waits for), with each task's state. */
import type { SessionRecord, SessionItem } from '../core/session-record.js';
import { spendLine } from '../orchestrator/sessions/digest.js';

const MARK: Record<SessionItem['status'], string> = { done: '✓', running: '▶', pending: '·', failed: '✗', dropped: '–' };

export function formatSessionLine(record: SessionRecord): string {
  const c = record.context;
  const done = c.items.filter((i) => i.status === 'done').length;
  return `${c.sessionId}  ${record.state.padEnd(10)}  ${done}/${c.items.filter((i) => i.status !== 'dropped').length} done  ${c.spec.goal}  (${c.spec.repo})`;
}

export function formatSession(record: SessionRecord): string {
  const c = record.context;
  const running = c.items.filter((i) => i.status === 'running').length;
  const lines = [
    `session ${c.sessionId}  ${record.state}`,
    `goal: ${c.spec.goal}`,
    `repository: ${c.spec.repo} (${c.spec.base}); backlog revision ${c.revisions.length}; ${running} running of at most ${c.spec.parallel}`,
    `spend: ${spendLine(c)}`,
  ];
  if (c.pause !== null) lines.push(`paused (${c.pause.kind}): ${c.pause.reason}`);
  if (c.plannerJob !== null) lines.push(`planner: making backlog revision ${c.plannerJob.revision} (attempt ${c.plannerJob.attempt})`);
  if (c.outcome !== null) lines.push(`outcome: ${c.outcome}`);
  lines.push('backlog:', ...backlogTree(c.items));
  return lines.join('\n');
}

function backlogTree(items: readonly SessionItem[]): string[] {
  const known = new Set(items.map((i) => i.id));
  const parentOf = (item: SessionItem) => [...item.dependsOn].reverse().find((d) => known.has(d));
  const children = new Map<string | undefined, SessionItem[]>();
  for (const item of items) {
    const parent = parentOf(item);
    children.set(parent, [...(children.get(parent) ?? []), item]);
  }
  const lines: string[] = [];
  const walk = (parent: string | undefined, depth: number) => {
    for (const item of children.get(parent) ?? []) {
      const also = item.dependsOn.filter((d) => d !== parentOf(item));
      const after = also.length === 0 ? '' : ` (also after ${also.join(', ')})`;
      lines.push(`${'  '.repeat(depth + 1)}${MARK[item.status]} ${item.id}  ${item.title}${after}  — ${describe(item)}`);
      walk(item.id, depth + 1);
    }
  };
  walk(undefined, 0);
  return lines;
}

function describe(item: SessionItem): string {
  const task = item.taskId === null ? '' : ` ${item.taskId}`;
  if (item.status === 'running') return `${item.taskState ?? 'starting'}${task}${item.waitingFor === undefined ? '' : `, waiting for ${item.waitingFor}`}`;
  if (item.status === 'failed' || (item.status === 'dropped' && item.outcome !== undefined)) return `${item.status}${task}: ${item.outcome ?? ''}`;
  return `${item.status}${task}${item.attempts > 1 ? ` (${item.attempts} attempts)` : ''}`;
}
