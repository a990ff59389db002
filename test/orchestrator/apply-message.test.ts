/**
 * The orchestrator's pure step: one stored record and one inbox message in, the record to commit
 * and the effects owed after the commit out. Redelivery must give back exactly the effects of the
 * first application, so a crash between commit and publish loses nothing and duplicates nothing.
 */
import { describe, expect, it } from 'vitest';
import type { GateDecide, InboxMessage, Plan, PlanProposed, TaskSubmit, Usage } from '../../core/bus/messages.js';
import { PlanRequest } from '../../core/bus/messages.js';
import type { Effect, TaskRecord } from '../../core/task-record.js';
import { applyMessage, type StepOutcome } from '../../orchestrator/apply-message.js';

const TASK = 't-7';
const T0 = '2025-03-01T10:00:00.000Z';
const at = (n: number) => new Date(Date.parse(T0) + n * 1000).toISOString();

const usage: Usage = { calls: 1, inputTokens: 100, cachedTokens: 0, outputTokens: 20, reasoningTokens: 0 };
const plan: Plan = { summary: 's', steps: [{ title: 'step', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] };
const manual = { approvers: ['alice'], required: 1, autoApprove: false };

const submit: TaskSubmit = {
  type: 'task.submit',
  taskId: TASK,
  msgId: 'm-submit',
  sentAt: T0,
  spec: { repo: '/tmp/repo', title: 'Add a greeting', body: '', base: 'main', submittedBy: 'alice' },
  policies: { plan: manual, review: manual, deploy: manual },
  maxReviewRounds: 2,
};
const planProposed = (jobId: string, msgId = 'm-plan'): PlanProposed => ({
  type: 'plan.proposed', taskId: TASK, msgId, sentAt: at(1), jobId, usage, plan,
});
const decide = (by: string, msgId: string): GateDecide => ({
  type: 'gate.decide', taskId: TASK, msgId, sentAt: at(2), gate: 'plan', decision: 'approve', by, via: 'cli',
});

function committed(outcome: StepOutcome): TaskRecord {
  if (outcome.kind !== 'commit') throw new Error(`expected a commit, got ${JSON.stringify(outcome)}`);
  return outcome.record;
}

function effectsOf(outcome: StepOutcome): Effect[] {
  if (outcome.kind === 'unknown-task') throw new Error('expected effects, got unknown-task');
  return outcome.effects;
}

/** Applies messages in turn, each of which must commit. */
function applyAll(record: TaskRecord | undefined, ...messages: InboxMessage[]): TaskRecord {
  let current = record;
  for (const message of messages) current = committed(applyMessage(current, message));
  if (current === undefined) throw new Error('no message was applied');
  return current;
}

const atPlanGate = () => applyAll(undefined, submit, planProposed(`${TASK}:plan:1`));

describe('applyMessage', () => {
  it('creates the record on task.submit, owing the plan job and an audit entry', () => {
    const outcome = applyMessage(undefined, submit);
    const record = committed(outcome);
    expect(record.state).toBe('planning');
    expect(record.context.currentJobId).toBe('t-7:plan:1');
    expect(effectsOf(outcome)).toEqual([
      {
        kind: 'publish',
        subject: 'sg.jobs.planner',
        msgId: 't-7:plan:1:dispatch',
        payload: { type: 'plan.request', taskId: TASK, msgId: 't-7:plan:1', sentAt: T0, task: submit.spec, attempt: 1, feedback: [] },
      },
      {
        kind: 'publish',
        subject: 'sg.log.t-7.event',
        msgId: 'm-submit:audit',
        payload: { type: 'task.event', taskId: TASK, msgId: 'm-submit:audit', sentAt: T0, event: submit, state: 'planning', accepted: true },
      },
    ]);
    expect(record.applied).toEqual([{ msgId: 'm-submit', effects: effectsOf(outcome) }]);
  });

  it('dispatches a plan job that the planner schema accepts', () => {
    const [dispatch] = effectsOf(applyMessage(undefined, submit));
    expect(PlanRequest.safeParse(dispatch?.payload).success).toBe(true);
  });

  it('commits nothing on a second submit of the same task id', () => {
    const record = applyAll(undefined, submit);
    expect(applyMessage(record, { ...submit, msgId: 'm-submit-again' })).toEqual({
      kind: 'effects-only',
      effects: [],
      reason: 'task t-7 already exists',
    });
  });

  it('gives back exactly the first effects, committing nothing, when the same message is applied again', () => {
    const gate = atPlanGate();
    const first = applyMessage(gate, decide('alice', 'm-approve'));
    const after = committed(first);
    expect(after.state).toBe('implementing');
    const firstEffects = effectsOf(first);
    expect(firstEffects.map((e) => e.msgId)).toEqual(['t-7:implement:1:dispatch', 'm-approve:audit']);

    expect(applyMessage(after, decide('alice', 'm-approve'))).toEqual({
      kind: 'effects-only',
      effects: firstEffects,
      reason: 'already applied',
    });
  });

  it('does not dispatch again a job the task has moved past when an applied message comes back', () => {
    const gate = atPlanGate();
    const approved = committed(applyMessage(gate, decide('alice', 'm-approve')));
    // A cancel is applied (by another orchestrator) before the approval's effects were published.
    const cancelled = committed(
      applyMessage(approved, { type: 'task.cancel', taskId: TASK, msgId: 'm-cancel', sentAt: approved.context.updatedAt, by: 'carol', reason: 'stop' }),
    );
    expect(cancelled.state).toBe('cancelled');
    const replay = applyMessage(cancelled, decide('alice', 'm-approve'));
    expect(replay.kind).toBe('effects-only');
    expect(effectsOf(replay).map((e) => e.msgId)).toEqual(['m-approve:audit']);
  });

  it('gives back the submit effects when task.submit is redelivered after its commit', () => {
    const first = applyMessage(undefined, submit);
    const again = applyMessage(committed(first), submit);
    expect(again).toEqual({ kind: 'effects-only', effects: effectsOf(first), reason: 'already applied' });
  });

  it('reports an event for a task it has no record of as unknown-task', () => {
    expect(applyMessage(undefined, planProposed(`${TASK}:plan:1`))).toEqual({ kind: 'unknown-task' });
  });

  it('answers a stale result with an audit entry naming the stale job, and still counts what it spent', () => {
    const record = applyAll(undefined, submit);
    const stale = planProposed(`${TASK}:plan:0`, 'm-stale');
    const note = 'stale result for job t-7:plan:0 (current: t-7:plan:1)';
    expect(applyMessage(record, stale)).toEqual({
      kind: 'effects-only',
      reason: note,
      effects: [
        { kind: 'spend.record', msgId: 'm-stale', payload: { taskId: TASK, repo: '/tmp/repo', day: '2025-03-01', usage } },
        {
          kind: 'publish',
          subject: 'sg.log.t-7.event',
          msgId: 'm-stale:audit',
          payload: { type: 'task.event', taskId: TASK, msgId: 'm-stale:audit', sentAt: at(1), event: stale, state: 'planning', accepted: false, note },
        },
      ],
    });
  });

  it("owes a result's spend under its message id: its repository and owner, its UTC day and the model it names", () => {
    const github = { ...submit, spec: { ...submit.spec, repo: 'https://github.com/Acme/App.git' } };
    const result = { ...planProposed(`${TASK}:plan:1`), sentAt: '2025-03-01T23:59:59.000Z', model: 'gpt-test' };
    const first = applyMessage(applyAll(undefined, github), result);
    const spend = effectsOf(first).filter((e) => e.kind === 'spend.record');
    expect(spend).toEqual([
      { kind: 'spend.record', msgId: 'm-plan', payload: { taskId: TASK, repo: 'acme/app', org: 'acme', day: '2025-03-01', model: 'gpt-test', usage } },
    ]);
    // Redelivered after the commit: the same entry is owed again, never a second one.
    expect(effectsOf(applyMessage(committed(first), result)).filter((e) => e.kind === 'spend.record')).toEqual(spend);
  });

  it('owes no spend for a result that called no model', () => {
    const none = { ...planProposed(`${TASK}:plan:1`), usage: { calls: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 } };
    expect(effectsOf(applyMessage(applyAll(undefined, submit), none)).map((e) => e.kind)).not.toContain('spend.record');
  });

  it('commits a refused decision with an audit entry saying why it did not count', () => {
    const outcome = applyMessage(atPlanGate(), decide('mallory', 'm-mallory'));
    const record = committed(outcome);
    expect(record.state).toBe('awaitingPlanApproval');
    expect(effectsOf(outcome).map((e) => e.payload)).toEqual([
      expect.objectContaining({ type: 'task.event', state: 'awaitingPlanApproval', accepted: false, note: 'mallory is not an approver for the plan gate' }),
    ]);
  });

  it('remembers at most the last 32 applied messages', () => {
    const refusals = Array.from({ length: 40 }, (_, i) => decide('mallory', `m-refused-${i}`));
    const record = applyAll(atPlanGate(), ...refusals);
    expect(record.applied).toHaveLength(32);
    expect(record.applied.map((a) => a.msgId)).toEqual(refusals.slice(-32).map((m) => m.msgId));
  });
});
