/**
 * A person's changes-requested review of the pull request (`review.human_changes_requested`),
 * through the pure statechart and the orchestrator's step: at the review or deploy gate it
 * sends the work back to the coder with the review's comments; anywhere else it changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { HumanChangesRequested, ImplementRequest, Plan, ReviewComment, TaskSubmit, Verdict } from '../../core/bus/messages.js';
import type { GatePolicy } from '../../core/policy.js';
import type { TaskRecord } from '../../core/task-record.js';
import { applyMessage } from '../../orchestrator/apply-message.js';
import { planDispatches } from '../../orchestrator/effects.js';
import { taskMachine, type TaskEvent } from '../../orchestrator/task-machine.js';

type Snapshot = SnapshotFrom<typeof taskMachine>;

const TASK = 't-hr';
const T0 = '2025-03-01T10:00:00.000Z';
const at = (n: number) => new Date(Date.parse(T0) + n * 1000).toISOString();
const manual: GatePolicy = { approvers: ['alice'], required: 1, autoApprove: false };
const noUsage = { calls: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 };
const plan: Plan = { summary: 'Add a greeting', steps: [{ title: 'Write greet()', detail: '' }], filesToTouch: ['src/greet.ts'], risks: [], acceptanceChecks: [] };
const approve: Verdict = { decision: 'approve', summary: 'looks good', comments: [] };
const changes: Verdict = { decision: 'request_changes', summary: 'needs a test', comments: [{ file: 'src/greet.ts', line: 3, body: 'add a test' }] };
const humanComments: ReviewComment[] = [
  { file: 'src/greet.ts', line: 2, body: 'Say hello in French too.' },
  { file: 'README.md', line: null, body: 'Document greet().' },
];

const submit = (maxReviewRounds = 2): TaskSubmit => ({
  type: 'task.submit',
  taskId: TASK,
  msgId: 'm-submit',
  sentAt: T0,
  spec: { repo: 'http://127.0.0.1/git/t-hr/acme/app.git', title: 'Add a greeting', body: '', base: 'main', submittedBy: 'github:octocat' },
  policies: { plan: manual, review: manual, deploy: manual },
  maxReviewRounds,
});

const envelope = (n: number) => ({ taskId: TASK, msgId: `m-${n}`, sentAt: at(n) });
const job = (s: Snapshot) => s.context.currentJobId ?? 'none';
const humanReview = (n = 10, comments = humanComments, summary = 'Not quite.'): HumanChangesRequested => ({
  type: 'review.human_changes_requested',
  ...envelope(n),
  by: 'github:wendy',
  summary,
  comments,
  url: 'https://github.com/acme/app/pull/2#pullrequestreview-7',
});

function drive(snapshot: Snapshot, ...events: Array<(s: Snapshot) => TaskEvent>): Snapshot {
  return events.reduce((s, make) => {
    const [next] = transition(taskMachine, s, make(s));
    if (next === s) throw new Error(`event did not apply in state ${String(s.value)}`);
    return next;
  }, snapshot);
}

const toImplementing = (maxReviewRounds?: number) =>
  drive(
    initialTransition(taskMachine, submit(maxReviewRounds))[0],
    (s) => ({ type: 'plan.proposed', ...envelope(1), jobId: job(s), usage: noUsage, plan }),
    () => ({ type: 'gate.decide', ...envelope(2), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' }),
  );
const committed = (s: Snapshot): TaskEvent => ({ type: 'code.committed', ...envelope(3), jobId: job(s), usage: noUsage, branch: 'stagegate/2-greet', commit: 'c1', summary: 'added greet()', attempts: 1 });
const toReviewing = () => drive(toImplementing(), committed);
const toDeployGate = () => drive(toReviewing(), (s) => ({ type: 'review.approved', ...envelope(4), jobId: job(s), usage: noUsage, verdict: approve, testsPassed: true }));
const toReviewGate = () =>
  drive(drive(toImplementing(0), committed), (s) => ({ type: 'review.changes_requested', ...envelope(4), jobId: job(s), usage: noUsage, verdict: changes, testsPassed: true }));

describe('human changes requested on the pull request', () => {
  it('sends the task from the deploy gate back to implementing with the review comments', () => {
    const [next, actions] = transition(taskMachine, toDeployGate(), humanReview());

    expect(next.value).toBe('implementing');
    expect(actions.map((a) => ({ type: a.type, params: a.params }))).toEqual([{ type: 'dispatchJob', params: { stage: 'implement' } }]);
    expect(next.context.reviewComments).toEqual(humanComments);
    expect(next.context.implementFeedback).toEqual(['github:wendy requested changes in a review of the pull request: Not quite.']);
  });

  it('hands the comments and the note to the next coder job', () => {
    const [next, actions] = transition(taskMachine, toDeployGate(), humanReview());
    const [effect] = planDispatches(next.context, actions, at(10));
    const dispatched = effect?.payload as ImplementRequest;

    expect(dispatched.type).toBe('implement.request');
    expect(dispatched.round).toBe(2);
    expect(dispatched.reviewComments).toEqual(humanComments);
    expect(dispatched.feedback).toEqual(['github:wendy requested changes in a review of the pull request: Not quite.']);
  });

  it('sends the task from the review gate back to implementing too', () => {
    const [next] = transition(taskMachine, toReviewGate(), humanReview());

    expect(next.value).toBe('implementing');
    expect(next.context.reviewComments).toEqual(humanComments);
  });

  it('leaves out an empty review text from the note', () => {
    const [next] = transition(taskMachine, toDeployGate(), humanReview(10, humanComments, '  '));

    expect(next.context.implementFeedback).toEqual(['github:wendy requested changes in a review of the pull request']);
  });

  it('changes nothing while the coder or the reviewer is at work', () => {
    for (const snapshot of [toImplementing(), toReviewing()]) {
      const [next, actions] = transition(taskMachine, snapshot, humanReview());
      expect(next).toBe(snapshot);
      expect(actions).toEqual([]);
    }
  });

  it('is recorded as not applied by the orchestrator step when the task is not at a gate', () => {
    const snapshot = toReviewing();
    const record: TaskRecord = { version: 1, state: 'reviewing', context: snapshot.context, applied: [] };

    const outcome = applyMessage(record, humanReview());

    expect(outcome.kind).toBe('effects-only');
    if (outcome.kind !== 'effects-only') return;
    expect(outcome.reason).toBe('ignored in state reviewing');
    const audit = outcome.effects[0]?.payload as { accepted: boolean; state: string };
    expect(audit).toMatchObject({ accepted: false, state: 'reviewing' });
  });

  it('clears the deploy gate timers when it leaves the gate', () => {
    const timed: GatePolicy = { ...manual, timeout: { remindAfterMs: 60_000, onExpire: 'reject' } };
    const [start] = initialTransition(taskMachine, { ...submit(), policies: { plan: manual, review: manual, deploy: timed } });
    const gate = drive(
      start,
      (s) => ({ type: 'plan.proposed', ...envelope(1), jobId: job(s), usage: noUsage, plan }),
      () => ({ type: 'gate.decide', ...envelope(2), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' }),
      committed,
      (s) => ({ type: 'review.approved', ...envelope(4), jobId: job(s), usage: noUsage, verdict: approve, testsPassed: true }),
    );
    const record: TaskRecord = { version: 1, state: 'awaitingDeployApproval', context: gate.context, applied: [] };

    const outcome = applyMessage(record, humanReview());

    expect(outcome.kind).toBe('commit');
    if (outcome.kind !== 'commit') return;
    expect(outcome.record.state).toBe('implementing');
    expect(outcome.effects.filter((e) => e.kind === 'timer.clear').map((e) => e.key)).toEqual([`${TASK}.deploy.1.remind`]);
  });

  it('counts each round a review starts, and with rounds left sends the work back', () => {
    const [next] = transition(taskMachine, toDeployGate(), { ...humanReview(), maxReviewerRounds: 1 });

    expect(next.value).toBe('implementing');
    expect(next.context.reviewerRounds).toEqual({ used: 1, note: null });
  });

  it('keeps the task at the deploy gate once the rounds are used up, dispatches nothing, and records why', () => {
    const afterOne = drive(
      toDeployGate(),
      () => ({ ...humanReview(10), maxReviewerRounds: 1 }),
      (s) => ({ type: 'code.committed', ...envelope(11), jobId: job(s), usage: noUsage, branch: 'stagegate/2-greet', commit: 'c2', summary: 'French too', attempts: 1 }),
      (s) => ({ type: 'review.approved', ...envelope(12), jobId: job(s), usage: noUsage, verdict: approve, testsPassed: true }),
    );

    const [next, actions] = transition(taskMachine, afterOne, { ...humanReview(13, [{ file: 'README.md', line: null, body: 'Again.' }]), maxReviewerRounds: 1 });

    expect(next.value).toBe('awaitingDeployApproval');
    expect(actions.map((a) => a.type)).not.toContain('dispatchJob');
    expect(next.context.reviewComments).not.toEqual([{ file: 'README.md', line: null, body: 'Again.' }]);
    expect(next.context.reviewerRounds.used).toBe(1);
    expect(next.context.reviewerRounds.note).toContain('already started 1 coder round (at most 1): a person decides at the gate');
  });

  it('takes a review without a limit (an older channel) as before', () => {
    const [next] = transition(taskMachine, toDeployGate(), humanReview());

    expect(next.value).toBe('implementing');
  });
});
