/**
 * Update rounds in the statechart alone (pure `transition`): a pull request that conflicts with
 * its base (or lags behind it) while the task waits at the review or deploy gate or for checks
 * sends it to an implement job that updates the branch, then through review again. A report
 * about another head, or one that arrives while the coder or reviewer is at work, changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { BaseMoved, CiPolicy, ForeignCommit, ImplementRequest, ReviewRequest, TaskSubmit } from '../../core/bus/messages.js';
import type { GatePolicy } from '../../core/policy.js';
import { planDispatches } from '../../orchestrator/effects.js';
import { taskMachine, type TaskEvent } from '../../orchestrator/task-machine.js';

type Snapshot = SnapshotFrom<typeof taskMachine>;

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
let clock = 0;
const next = () => ({ taskId: 't-up', msgId: `m-${++clock}`, sentAt: new Date(T0 + clock * 1000).toISOString() });
const manual: GatePolicy = { approvers: ['alice'], required: 1, autoApprove: false };
const usage = { calls: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 };
const C1 = 'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1';
const C2 = 'c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2';
const BASE = 'b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0';

function submit(ci?: CiPolicy, maxReviewRounds = 2): TaskSubmit {
  return {
    type: 'task.submit',
    ...next(),
    spec: { repo: '/tmp/repo', title: 'Fix the parser', body: '', base: 'main', submittedBy: 'alice' },
    policies: { plan: manual, review: manual, deploy: manual },
    maxReviewRounds,
    ...(ci === undefined ? {} : { ci }),
  };
}

function step(snapshot: Snapshot, event: TaskEvent) {
  return transition(taskMachine, snapshot, event);
}
const apply = (snapshot: Snapshot, event: TaskEvent): Snapshot => step(snapshot, event)[0];
const job = (s: Snapshot) => s.context.currentJobId ?? 'none';

function committed(s: Snapshot, commit: string, foreignCommits?: ForeignCommit[]): Snapshot {
  return apply(s, { type: 'code.committed', ...next(), jobId: job(s), usage, branch: 'stagegate/t-up', commit, summary: 'fixed', attempts: 1, ...(foreignCommits === undefined ? {} : { foreignCommits }) });
}
const approved = (s: Snapshot): Snapshot =>
  apply(s, { type: 'review.approved', ...next(), jobId: job(s), usage, verdict: { decision: 'approve', summary: 'ok', comments: [], risk: 'low' }, testsPassed: true });

/** No review rounds: the reviewer's request for changes stops at the review gate. */
function atReviewGate(): Snapshot {
  let s = initialTransition(taskMachine, submit(undefined, 0))[0];
  s = apply(s, { type: 'plan.proposed', ...next(), jobId: job(s), usage, plan: { summary: 'fix', steps: [{ title: 'fix', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] } });
  s = apply(s, { type: 'gate.decide', ...next(), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' });
  s = committed(s, C1);
  return apply(s, { type: 'review.changes_requested', ...next(), jobId: job(s), usage, verdict: { decision: 'request_changes', summary: 'no', comments: [], risk: 'low' }, testsPassed: true });
}

function atDeployGate(ci?: CiPolicy): Snapshot {
  let s = initialTransition(taskMachine, submit(ci))[0];
  s = apply(s, { type: 'plan.proposed', ...next(), jobId: job(s), usage, plan: { summary: 'fix', steps: [{ title: 'fix', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] } });
  s = apply(s, { type: 'gate.decide', ...next(), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' });
  return approved(committed(s, C1));
}

const baseMoved = (head: string, mergeableState: BaseMoved['mergeableState'] = 'dirty'): BaseMoved => ({ type: 'base.moved', ...next(), head, baseSha: BASE, mergeableState });

function dispatchedJob(s: Snapshot, actions: ReturnType<typeof step>[1]) {
  const effects = planDispatches(s.context, actions.map((a) => ({ type: a.type, params: a.params })), s.context.updatedAt);
  const publish = effects.find((e) => e.kind === 'publish');
  return publish?.payload;
}

describe('update rounds', () => {
  it('sends a conflicting pull request at the deploy gate to an update job that merges the base, with the conflict noted', () => {
    const [s, actions] = step(atDeployGate(), baseMoved(C1));
    expect(s.value).toBe('implementing');
    expect(s.context.update).toEqual({ baseSha: BASE, conflicts: true });
    const request = dispatchedJob(s, actions) as ImplementRequest;
    expect(request.type).toBe('implement.request');
    expect(request.update).toEqual({ baseSha: BASE, conflicts: true });
  });

  it('updates from the review gate and while waiting for checks too; behind is not a conflict', () => {
    const fromReview = apply(atReviewGate(), baseMoved(C1, 'behind'));
    expect(fromReview.value).toBe('implementing');
    expect(fromReview.context.update).toEqual({ baseSha: BASE, conflicts: false });
    const waiting = atDeployGate({ maxFixAttempts: 3, onRedBase: 'wait' });
    expect(waiting.value).toBe('awaitingChecks');
    expect(apply(waiting, baseMoved(C1)).value).toBe('implementing');
  });

  it('reviews the merged result again, and the next implement job is an ordinary one', () => {
    let s = apply(atDeployGate(), baseMoved(C1));
    s = committed(s, C2);
    expect(s.value).toBe('reviewing');
    expect(s.context.update).toBeNull();
    expect(s.context.head).toBe(C2);
    const updating = apply(atDeployGate(), baseMoved(C1));
    const [reviewing, actions] = step(updating, { type: 'code.committed', ...next(), jobId: job(updating), usage, branch: 'stagegate/t-up', commit: C2, summary: 'merged main', attempts: 1 });
    expect((dispatchedJob(reviewing, actions) as ReviewRequest).commit).toBe(C2);
    s = apply(s, { type: 'review.changes_requested', ...next(), jobId: job(s), usage, verdict: { decision: 'request_changes', summary: 'fix', comments: [], risk: 'low' }, testsPassed: true });
    expect(s.value).toBe('implementing');
    expect(s.context.update).toBeNull();
  });

  it('does not count approvals given before the update: the gate is visited afresh', () => {
    let s = atDeployGate();
    const visit = s.context.gateVisits.deploy;
    s = approved(committed(apply(s, baseMoved(C1)), C2));
    expect(s.value).toBe('awaitingDeployApproval');
    expect(s.context.gateVisits.deploy).toBe(visit + 1);
  });

  it('ignores a report about a head the task no longer has', () => {
    const s = apply(atDeployGate(), { type: 'branch.moved', ...next(), branch: 'stagegate/t-up', sha: C2 });
    expect(apply(s, baseMoved(C1))).toBe(s);
    expect(apply(s, baseMoved(C2)).value).toBe('implementing');
  });

  it('does not start an update while the coder or the reviewer is at work, or after the deploy gate', () => {
    let s = initialTransition(taskMachine, submit())[0];
    s = apply(s, { type: 'plan.proposed', ...next(), jobId: job(s), usage, plan: { summary: 'fix', steps: [{ title: 'fix', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] } });
    s = apply(s, { type: 'gate.decide', ...next(), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' });
    expect(s.value).toBe('implementing');
    expect(apply(s, baseMoved(C1)).context.update).toBeNull();
    s = committed(s, C1);
    expect(s.value).toBe('reviewing');
    const during = apply(s, baseMoved(C1));
    expect(during.value).toBe('reviewing');
    expect(during.context.update).toBeNull();
    const deploying = apply(atDeployGate(), { type: 'gate.decide', ...next(), gate: 'deploy', decision: 'approve', by: 'alice', via: 'cli' });
    expect(deploying.value).toBe('deploying');
    expect(apply(deploying, baseMoved(C1)).value).toBe('deploying');
  });

  it('keeps the update for a retry when the update job fails', () => {
    let s = apply(atDeployGate(), baseMoved(C1));
    s = apply(s, { type: 'job.failed', ...next(), jobId: job(s), usage, stage: 'implement', reason: 'merge conflict in src/a.ts' });
    expect(s.value).toBe('failed');
    const [retried, actions] = step(s, { type: 'task.retry', ...next(), by: 'alice' });
    expect(retried.value).toBe('implementing');
    expect((dispatchedJob(retried, actions) as ImplementRequest).update).toEqual({ baseSha: BASE, conflicts: true });
  });

  it('records the commits on the branch Stagegate did not make', () => {
    const foreign: ForeignCommit[] = [{ sha: 'abcdef1234567', author: 'Alice <alice@example.com>', subject: 'Fix a typo' }];
    const s = committed(apply(atDeployGate(), baseMoved(C1)), C2, foreign);
    expect(s.context.foreignCommits).toEqual(foreign);
  });

  it('does not use up a review round on the review of an update', () => {
    // One review round: the first review is approved, then two updates; changes requested on the
    // second update's review still go back to the coder, as on the first review.
    let s = initialTransition(taskMachine, submit(undefined, 1))[0];
    s = apply(s, { type: 'plan.proposed', ...next(), jobId: job(s), usage, plan: { summary: 'fix', steps: [{ title: 'fix', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] } });
    s = apply(s, { type: 'gate.decide', ...next(), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' });
    s = approved(committed(s, C1));
    s = approved(committed(apply(s, baseMoved(C1)), C2));
    s = committed(apply(s, baseMoved(C2)), C1);
    expect(s.context.freeReviews).toBe(2);
    s = apply(s, { type: 'review.changes_requested', ...next(), jobId: job(s), usage, verdict: { decision: 'request_changes', summary: 'the merge broke it', comments: [] }, testsPassed: false });
    expect(s.value).toBe('implementing');
    expect(s.context.update).toBeNull();
    // That round was the one the task has: the next request for changes stops at the review gate.
    s = committed(s, C2);
    s = apply(s, { type: 'review.changes_requested', ...next(), jobId: job(s), usage, verdict: { decision: 'request_changes', summary: 'still', comments: [] }, testsPassed: false });
    expect(s.value).toBe('awaitingReviewApproval');
  });
});
