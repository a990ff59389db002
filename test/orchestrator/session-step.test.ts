/**
 * The session's pure step: backlog in dependency order with at most `parallel` tasks, revisions
 * on failure (bounded, then a person), budgets that pause new work with a report, stop with
 * cancels, and redelivery giving back the same effects.
 */
import { describe, expect, it } from 'vitest';
import type { Backlog, BacklogRequest, TaskCancel, TaskSubmit, Usage } from '../../core/bus/messages.js';
import type { SessionDigest, SessionMessage, SessionStart, SessionTaskUpdate } from '../../core/bus/session-messages.js';
import type { SessionRecord } from '../../core/session-record.js';
import type { Effect } from '../../core/task-record.js';
import { applySessionMessage, type SessionStepOutcome } from '../../orchestrator/sessions/session-step.js';

const SID = 's-abc';
const T0 = '2026-03-01T10:00:00.000Z';
let clock = 0;
const next = () => new Date(Date.parse(T0) + ++clock * 1000).toISOString();
const usage = (tokens: number): Usage => ({ calls: 1, inputTokens: tokens, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 });
const none: Usage = { calls: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 };
const manual = { approvers: ['alice'], required: 1, autoApprove: false };

function start(overrides: Partial<SessionStart['spec']> = {}): SessionStart {
  return {
    type: 'session.start',
    sessionId: SID,
    msgId: 'm-start',
    sentAt: T0,
    spec: {
      repo: '/tmp/repo',
      goal: 'migrate the API to v2',
      base: 'main',
      submittedBy: 'alice',
      parallel: 2,
      budget: {},
      onBudget: 'finish',
      maxItemAttempts: 2,
      maxRevisions: 10,
      digestTo: {},
      pricing: { 'm-1': { inputPerMTok: 1, cachedInputPerMTok: 0.1, outputPerMTok: 4 } },
      models: { planner: 'm-1', coder: 'm-1', reviewer: 'm-1', deployer: 'm-1' },
      ...overrides,
    },
    policies: { plan: manual, review: manual, deploy: manual },
    maxReviewRounds: 2,
  };
}

/** a ← b, a ← c, (b, c) ← d, e alone. */
const fiveItems: Backlog = {
  summary: 'five steps',
  items: [
    { id: 'a', title: 'A', body: 'do a', dependsOn: [] },
    { id: 'b', title: 'B', body: 'do b', dependsOn: ['a'] },
    { id: 'c', title: 'C', body: 'do c', dependsOn: ['a'] },
    { id: 'd', title: 'D', body: 'do d', dependsOn: ['b', 'c'] },
    { id: 'e', title: 'E', body: 'do e', dependsOn: [] },
  ],
};

function committed(outcome: SessionStepOutcome): SessionRecord {
  if (outcome.kind !== 'commit') throw new Error(`expected a commit, got ${JSON.stringify(outcome)}`);
  return outcome.record;
}

/** Applies a message that must commit; returns the record and the effects it owed. */
function step(record: SessionRecord | undefined, message: SessionMessage): { record: SessionRecord; effects: Effect[] } {
  const outcome = applySessionMessage(record, message);
  return { record: committed(outcome), effects: outcome.kind === 'commit' ? outcome.effects : [] };
}

const payloads = <T>(effects: Effect[], type: string): T[] =>
  effects.flatMap((e) => (e.kind === 'publish' && (e.payload as { type?: string }).type === type ? [e.payload as T] : []));
const submitted = (effects: Effect[]) => payloads<TaskSubmit>(effects, 'task.submit').map((s) => s.spec.session?.item);

function backlogFrom(record: SessionRecord, backlog: Backlog, tokens = 0) {
  const jobId = record.context.plannerJob?.jobId ?? 'none';
  return step(record, { type: 'backlog.proposed', taskId: SID, msgId: `${jobId}:result`, sentAt: next(), jobId, usage: tokens === 0 ? none : usage(tokens), backlog });
}

function update(record: SessionRecord, item: string, state: string, extra: Partial<SessionTaskUpdate> = {}) {
  const taskId = record.context.items.find((i) => i.id === item)?.taskId ?? 'none';
  return step(record, {
    type: 'session.task_update',
    sessionId: SID,
    msgId: `${taskId}:${state}:${clock}`,
    sentAt: next(),
    taskId,
    item,
    state,
    usage: none,
    ...extra,
  });
}

describe('a session', () => {
  it('asks the planner for a backlog, then runs it in dependency order with at most `parallel` tasks', () => {
    const started = step(undefined, start());
    expect(started.record.state).toBe('planning');
    const [request] = payloads<BacklogRequest>(started.effects, 'backlog.request');
    expect(request).toMatchObject({ goal: 'migrate the API to v2', revision: 1, current: [] });

    let { record, effects } = backlogFrom(started.record, fiveItems);
    expect(record.state).toBe('running');
    expect(submitted(effects)).toEqual(['a', 'e']);
    const order: string[] = [];
    const finish = (item: string) => {
      ({ record, effects } = update(record, item, 'done'));
      order.push(item);
      const running = record.context.items.filter((i) => i.status === 'running').length;
      expect(running).toBeLessThanOrEqual(2);
      return submitted(effects);
    };
    expect(finish('e')).toEqual([]);
    expect(finish('a')).toEqual(['b', 'c']);
    expect(finish('b')).toEqual([]);
    expect(finish('c')).toEqual(['d']);
    expect(record.state).toBe('running');
    expect(finish('d')).toEqual([]);
    expect(record.state).toBe('completed');
    expect(payloads<SessionDigest>(effects, 'session.digest')[0]?.text).toContain('Done 5 of 5');
  });

  it('submits each task with the session, its item and the session policies', () => {
    const { effects } = backlogFrom(step(undefined, start()).record, fiveItems);
    const [task] = payloads<TaskSubmit>(effects, 'task.submit');
    expect(task).toMatchObject({ taskId: `${SID}-a-1`, spec: { session: { id: SID, item: 'a' }, submittedBy: 'alice', repo: '/tmp/repo' }, maxReviewRounds: 2 });
  });

  it('revises the backlog when a task fails, keeping the old revision, and retries the item under a new task', () => {
    let { record } = backlogFrom(step(undefined, start()).record, fiveItems);
    let effects: Effect[];
    ({ record, effects } = update(record, 'a', 'failed', { reason: 'tests fail' }));
    expect(record.state).toBe('planning');
    const [revision] = payloads<BacklogRequest>(effects, 'backlog.request');
    expect(revision?.revision).toBe(2);
    expect(revision?.reason).toContain('a failed (attempt 1)');
    expect(revision?.current.find((i) => i.id === 'a')).toMatchObject({ status: 'failed', outcome: expect.stringContaining('tests fail') });

    const revised: Backlog = { summary: 'smaller first step', items: [{ id: 'a', title: 'A', body: 'do a, smaller', dependsOn: [] }, ...fiveItems.items.slice(1)] };
    ({ record, effects } = backlogFrom(record, revised));
    expect(record.state).toBe('running');
    expect(record.context.revisions.map((r) => r.revision)).toEqual([1, 2]);
    expect(record.context.revisions[0]?.items.find((i) => i.id === 'a')?.body).toBe('do a');
    expect(payloads<TaskSubmit>(effects, 'task.submit').map((t) => t.taskId)).toEqual([`${SID}-a-2`]);
  });

  it('asks a person instead of retrying an item past its attempts', () => {
    let { record } = backlogFrom(step(undefined, start({ maxItemAttempts: 1 })).record, fiveItems);
    let effects: Effect[];
    ({ record, effects } = update(record, 'a', 'failed', { reason: 'tests fail' }));
    expect(record.state).toBe('paused');
    expect(record.context.pause).toMatchObject({ kind: 'needs-human', reason: expect.stringContaining('item a failed 1 time') });
    expect(payloads<BacklogRequest>(effects, 'backlog.request')).toEqual([]);
    expect(payloads<SessionDigest>(effects, 'session.digest')[0]?.reason).toBe('paused');

    // A person resumes: one more revision and attempt are granted.
    ({ record, effects } = step(record, { type: 'session.resume', sessionId: SID, msgId: 'm-resume', sentAt: next(), by: 'alice' }));
    expect(record.state).toBe('planning');
    expect(payloads<BacklogRequest>(effects, 'backlog.request')).toHaveLength(1);
  });

  it('pauses new work at the token budget with a report, lets running tasks finish, and resumes only with a higher budget', () => {
    let { record } = backlogFrom(step(undefined, start({ budget: { tokens: 1_000 } })).record, fiveItems);
    let effects: Effect[];
    ({ record, effects } = update(record, 'a', 'implementing', { usage: usage(1_200), role: 'coder' }));
    expect(record.state).toBe('paused');
    expect(record.context.pause?.reason).toContain('token budget (1000 tokens; 1200 used)');
    expect(payloads<TaskCancel>(effects, 'task.cancel')).toEqual([]);
    const [report] = payloads<SessionDigest>(effects, 'session.digest');
    expect(report?.text).toMatch(/Running[\s\S]*- a/);
    expect(report?.text).toMatch(/Remaining[\s\S]*- b/);

    ({ record, effects } = update(record, 'a', 'done'));
    expect(submitted(effects)).toEqual([]);
    expect(applySessionMessage(record, { type: 'session.resume', sessionId: SID, msgId: 'm-r1', sentAt: next(), by: 'alice' })).toMatchObject({
      kind: 'effects-only',
      reason: expect.stringContaining('still over budget'),
    });
    ({ record, effects } = step(record, { type: 'session.resume', sessionId: SID, msgId: 'm-r2', sentAt: next(), by: 'alice', budget: { tokens: 10_000 } }));
    expect(record.state).toBe('running');
    // e still runs: one slot is free.
    expect(submitted(effects)).toEqual(['b']);
  });

  it('prices spend per model and stops running tasks at the cost budget when set to stop', () => {
    const running = backlogFrom(step(undefined, start({ budget: { usd: 0.001 }, onBudget: 'stop' })).record, fiveItems).record;
    const { record, effects } = update(running, 'a', 'reviewing', { usage: usage(2_000), role: 'coder' });
    expect(record.context.costUsd).toBeCloseTo(0.002, 10);
    expect(record.state).toBe('paused');
    expect(payloads<TaskCancel>(effects, 'task.cancel').map((c) => c.taskId).sort()).toEqual([`${SID}-a-1`, `${SID}-e-1`]);
  });

  it('stops on request, cancelling what runs, and takes no new work after', () => {
    let { record } = backlogFrom(step(undefined, start()).record, fiveItems);
    let effects: Effect[];
    ({ record, effects } = step(record, { type: 'session.stop', sessionId: SID, msgId: 'm-stop', sentAt: next(), by: 'alice', reason: 'enough' }));
    expect(record.state).toBe('stopped');
    expect(payloads<TaskCancel>(effects, 'task.cancel')).toHaveLength(2);
    ({ effects } = update(record, 'a', 'done'));
    expect(submitted(effects)).toEqual([]);
  });

  it('retries a failed backlog job under a new id, then asks a person', () => {
    let { record } = step(undefined, start());
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const jobId = record.context.plannerJob?.jobId ?? 'none';
      ids.push(jobId);
      ({ record } = step(record, { type: 'job.failed', taskId: SID, msgId: `${jobId}:result`, sentAt: next(), jobId, usage: none, stage: 'plan', reason: 'model down' }));
    }
    expect(new Set(ids).size).toBe(3);
    expect(record.state).toBe('paused');
    expect(record.context.pause?.reason).toContain('planner failed 3 times');
  });

  it('refuses a backlog with a cycle as a failed backlog job', () => {
    const started = step(undefined, start()).record;
    const cyclic: Backlog = { summary: 'loop', items: [{ id: 'x', title: 'X', body: '', dependsOn: ['y'] }, { id: 'y', title: 'Y', body: '', dependsOn: ['x'] }] };
    const { record, effects } = backlogFrom(started, cyclic);
    expect(record.state).toBe('planning');
    expect(record.context.items).toEqual([]);
    expect(payloads<BacklogRequest>(effects, 'backlog.request')).toHaveLength(1);
  });

  it('gives back the same effects for a redelivered message', () => {
    const started = step(undefined, start()).record;
    const jobId = started.context.plannerJob?.jobId ?? 'none';
    const proposed = { type: 'backlog.proposed' as const, taskId: SID, msgId: 'm-b', sentAt: next(), jobId, usage: none, backlog: fiveItems };
    const first = step(started, proposed);
    const again = applySessionMessage(first.record, proposed);
    expect(again).toEqual({ kind: 'effects-only', effects: first.effects, reason: 'already applied' });
  });
});
