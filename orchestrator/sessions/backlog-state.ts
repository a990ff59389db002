/**
 * The session's backlog as data, pure: applying a planner revision, choosing what to start,
 * recording what a task reported, and measuring spend against the budget. The statechart
 * (`session-machine.ts`) decides when each of these happens.
 */
import type { AgentRole, Backlog, BacklogItemStatus, Usage } from '../../core/bus/messages.js';
import type { SessionTaskUpdate } from '../../core/bus/session-messages.js';
import { costUsd } from '../../core/model/cost.js';
import type { SessionContext, SessionItem } from '../../core/session-record.js';
import { addUsage, emptyUsage } from '../../core/task-record.js';

const FINISHED_TASK_STATES = new Set(['done', 'failed', 'cancelled']);

/** The task of an item's attempt: its id is built from the session, the item and the attempt. */
export function taskIdFor(sessionId: string, itemId: string, attempt: number): string {
  return `${sessionId}-${itemId}-${attempt}`;
}

/**
 * A revision replaces what is still open and keeps what is settled: done and running items stand
 * as they are; a failed item the planner names again is retried with its new text; pending or
 * failed items it leaves out are dropped.
 */
export function applyBacklog(items: readonly SessionItem[], backlog: Backlog): SessionItem[] {
  const proposed = new Map(backlog.items.map((i) => [i.id, i]));
  const kept = items.map((item): SessionItem => {
    if (item.status === 'done' || item.status === 'running') return item;
    const next = proposed.get(item.id);
    if (next === undefined) return item.status === 'dropped' ? item : { ...item, status: 'dropped' };
    return { ...item, title: next.title, body: next.body, dependsOn: next.dependsOn, status: 'pending' };
  });
  const known = new Set(items.map((i) => i.id));
  const added = backlog.items
    .filter((i) => !known.has(i.id))
    .map(
      (i): SessionItem => ({
        ...i,
        status: 'pending',
        attempts: 0,
        taskId: null,
        taskState: null,
        usage: emptyUsage(),
        costUsd: 0,
        startedAt: null,
        endedAt: null,
      }),
    );
  return [...kept, ...added];
}

export function runningCount(items: readonly SessionItem[]): number {
  return items.filter((i) => i.status === 'running').length;
}

/** Pending items whose dependencies are all done, in backlog order, as many as `parallel` leaves room for. */
export function itemsToStart(context: SessionContext): SessionItem[] {
  const done = new Set(context.items.filter((i) => i.status === 'done').map((i) => i.id));
  const room = context.spec.parallel - runningCount(context.items);
  if (room <= 0) return [];
  return context.items.filter((i) => i.status === 'pending' && i.dependsOn.every((d) => done.has(d))).slice(0, room);
}

export function startItems(context: SessionContext, at: string): SessionItem[] {
  const starting = new Set(itemsToStart(context).map((i) => i.id));
  return context.items.map((item) => {
    if (!starting.has(item.id)) return item;
    const attempts = item.attempts + 1;
    const { waitingFor: _gone, outcome: _old, ...rest } = item;
    return { ...rest, status: 'running', attempts, taskId: taskIdFor(context.sessionId, item.id, attempts), taskState: null, startedAt: at, endedAt: null };
  });
}

/** Every item done or dropped: nothing is left to start or wait for. */
export function allSettled(items: readonly SessionItem[]): boolean {
  return items.length > 0 && items.every((i) => i.status === 'done' || i.status === 'dropped');
}

/**
 * Pending items that can never start: one of their dependencies was dropped. They wait for the
 * planner like a failed item does.
 */
export function blockedItems(items: readonly SessionItem[]): SessionItem[] {
  const dropped = new Set(items.filter((i) => i.status === 'dropped').map((i) => i.id));
  return items.filter((i) => i.status === 'pending' && i.dependsOn.some((d) => dropped.has(d)));
}

export function failedItems(items: readonly SessionItem[]): SessionItem[] {
  return items.filter((i) => i.status === 'failed');
}

/** Spend of one update, priced with the model of the role that spent it. */
function priced(context: SessionContext, usage: Usage, role: AgentRole | undefined): { cost: number; unpriced?: string } {
  if (usage.calls === 0 && usage.inputTokens === 0 && usage.outputTokens === 0) return { cost: 0 };
  const model = context.spec.models[role ?? 'planner'];
  const price = context.spec.pricing[model];
  return price === undefined ? { cost: 0, unpriced: model } : { cost: costUsd(usage, price) };
}

export function addSpend(context: SessionContext, usage: Usage, role: AgentRole | undefined): Pick<SessionContext, 'usage' | 'costUsd' | 'unpricedModels'> {
  const { cost, unpriced } = priced(context, usage, role);
  return {
    usage: addUsage(context.usage, usage),
    costUsd: context.costUsd + cost,
    unpricedModels: unpriced === undefined || context.unpricedModels.includes(unpriced) ? context.unpricedModels : [...context.unpricedModels, unpriced],
  };
}

/**
 * What a task's step reported, on the item whose current task it is. An update from an earlier
 * attempt's task only adds its spend: that attempt is over for the session.
 */
export function recordTaskUpdate(context: SessionContext, update: SessionTaskUpdate): SessionItem[] {
  const { cost } = priced(context, update.usage, update.role);
  return context.items.map((item) => {
    if (item.id !== update.item) return item;
    const spent = { usage: addUsage(item.usage, update.usage), costUsd: item.costUsd + cost };
    if (item.taskId !== update.taskId || item.status !== 'running') return { ...item, ...spent };
    const { waitingFor: _was, ...rest } = item;
    const next: SessionItem = { ...rest, ...spent, taskState: update.state, ...(update.waitingFor === undefined ? {} : { waitingFor: update.waitingFor }) };
    if (!FINISHED_TASK_STATES.has(update.state)) return next;
    if (update.state === 'done') return { ...next, status: 'done', endedAt: update.sentAt };
    return { ...next, status: 'failed', endedAt: update.sentAt, outcome: `task ${update.taskId} ${update.state}${update.reason === undefined ? '' : `: ${update.reason}`}` };
  });
}

/** The budget the session has reached, in words; undefined while none is reached. */
export function budgetReached(context: SessionContext, now: string): string | undefined {
  const { budget } = context.spec;
  const tokens = context.usage.inputTokens + context.usage.outputTokens;
  if (budget.tokens !== undefined && tokens >= budget.tokens) return `the token budget (${budget.tokens} tokens; ${tokens} used)`;
  if (budget.usd !== undefined && context.costUsd >= budget.usd) return `the cost budget ($${budget.usd.toFixed(2)}; $${context.costUsd.toFixed(2)} spent)`;
  if (budget.until !== undefined && Date.parse(now) >= Date.parse(budget.until)) return `the deadline (${budget.until})`;
  return undefined;
}

/** The backlog as the planner is shown it when revising. */
export function backlogStatus(items: readonly SessionItem[]): BacklogItemStatus[] {
  return items.map(({ id, title, body, dependsOn, status, attempts, outcome }) => ({
    id,
    title,
    body,
    dependsOn,
    status,
    attempts,
    ...(outcome === undefined ? {} : { outcome }),
  }));
}

/** Why the planner is asked again: the items that failed or cannot start, with how they ended. */
export function revisionReason(items: readonly SessionItem[]): string {
  const failed = failedItems(items).map((i) => `${i.id} failed (attempt ${i.attempts}): ${i.outcome ?? 'no reason given'}`);
  const blocked = blockedItems(items).map((i) => `${i.id} cannot start: it depends on a dropped item`);
  return [...failed, ...blocked].join('\n');
}
