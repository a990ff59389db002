/**
 * The CI-fix loop in the statechart alone (pure `transition`): a task with a CI policy waits for
 * the checks on its reviewed commit; red goes back to the coder with what failed, green goes on
 * to the deploy gate, and the loop stops for a person on the same failure twice or when its
 * attempts are used up. A base branch that is red too is not the change's to fix. A person's
 * push is checked too: at the review gate (where the loop stopped for them) it is reviewed, then
 * its checks read; at the deploy gate its checks are read before the gate waits again.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { CheckFailure, CiPolicy, ReviewRequest, TaskSubmit } from '../../core/bus/messages.js';
import { planDispatches } from '../../orchestrator/effects.js';
import { autoApproveRefusal } from '../../orchestrator/gate-policy.js';
import type { GatePolicy } from '../../core/policy.js';
import { taskMachine, type TaskEvent } from '../../orchestrator/task-machine.js';

type Snapshot = SnapshotFrom<typeof taskMachine>;

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
let clock = 0;
const next = () => ({ taskId: 't-ci', msgId: `m-${++clock}`, sentAt: new Date(T0 + clock * 1000).toISOString() });
const manual: GatePolicy = { approvers: ['alice'], required: 1, autoApprove: false };

function submit(ci: CiPolicy | undefined, deploy: GatePolicy = manual): TaskSubmit {
  return {
    type: 'task.submit',
    ...next(),
    spec: { repo: '/tmp/repo', title: 'Fix the parser', body: '', base: 'main', submittedBy: 'alice' },
    policies: { plan: manual, review: manual, deploy },
    maxReviewRounds: 2,
    ...(ci === undefined ? {} : { ci }),
  };
}

function apply(snapshot: Snapshot, event: TaskEvent): Snapshot {
  return transition(taskMachine, snapshot, event)[0];
}

const job = (s: Snapshot) => s.context.currentJobId ?? 'none';
const usage = { calls: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 };

/** Plan approved, `commit` committed and approved by the reviewer. */
function reviewed(snapshot: Snapshot, commit: string): Snapshot {
  let s = snapshot;
  s = apply(s, { type: 'code.committed', ...next(), jobId: job(s), usage, branch: 'stagegate/t-ci', commit, summary: 'fixed', attempts: 1 });
  return apply(s, { type: 'review.approved', ...next(), jobId: job(s), usage, verdict: { decision: 'approve', summary: 'ok', comments: [], risk: 'low' }, testsPassed: true });
}

function atChecks(ci: CiPolicy | undefined, commit = 'c1', deploy?: GatePolicy): Snapshot {
  let s = initialTransition(taskMachine, submit(ci, deploy))[0];
  s = apply(s, { type: 'plan.proposed', ...next(), jobId: job(s), usage, plan: { summary: 'fix', steps: [{ title: 'fix', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] } });
  s = apply(s, { type: 'gate.decide', ...next(), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' });
  return reviewed(s, commit);
}

const failure = (name: string, signature: string, details = `${name} failed`): CheckFailure => ({ name, details, signature, url: `https://ci.example/${name}` });
const red = (commit: string, failures: CheckFailure[], baseRed = false): TaskEvent => ({ type: 'checks.reported', ...next(), commit, verdict: 'red', failures, baseRed, summary: failures.map((f) => `${f.name} failure`).join(', ') });
const green = (commit: string): TaskEvent => ({ type: 'checks.reported', ...next(), commit, verdict: 'green', failures: [], baseRed: false, summary: 'test success' });

const POLICY: CiPolicy = { maxFixAttempts: 3, onRedBase: 'wait' };

describe('CI-fix loop', () => {
  it('goes straight to the deploy gate after review when the task has no CI policy', () => {
    expect(atChecks(undefined).value).toBe('awaitingDeployApproval');
  });

  it('waits for the checks after review, then goes to the deploy gate on green, with checks green as a fact', () => {
    const waiting = atChecks(POLICY);
    expect(waiting.value).toBe('awaitingChecks');
    const passed = apply(waiting, green('c1'));
    expect(passed.value).toBe('awaitingDeployApproval');
    expect(passed.context.facts.checksGreen).toBe(true);
    expect(passed.context.ci.note).toBe('checks passed on c1: test success');
  });

  it('ignores a report about another commit', () => {
    const waiting = atChecks(POLICY);
    expect(apply(waiting, green('c0'))).toBe(waiting);
    expect(apply(waiting, red('c0', [failure('test', 'a')]))).toBe(waiting);
  });

  it('sends a red report back to the coder with the failure details, and counts the attempt', () => {
    const fixing = apply(atChecks(POLICY), red('c1', [failure('test', 'sig-a', 'FAIL src/parse.test.ts > parses dates\nexpected 1 to be 2')]));
    expect(fixing.value).toBe('implementing');
    expect(fixing.context.ci).toMatchObject({ fixAttempts: 1, lastSignatures: ['sig-a'] });
    const note = fixing.context.implementFeedback.at(-1) ?? '';
    expect(note).toContain('CI failed on c1 (fix attempt 1 of 3)');
    expect(note).toContain('## test (https://ci.example/test)');
    expect(note).toContain('expected 1 to be 2');
  });

  it('goes round again after the fix, and passes once the checks are green', () => {
    let s = apply(atChecks(POLICY), red('c1', [failure('test', 'sig-a')]));
    s = reviewed(s, 'c2');
    expect(s.value).toBe('awaitingChecks');
    s = apply(s, red('c2', [failure('lint', 'sig-b')]));
    expect(s.value).toBe('implementing');
    s = apply(reviewed(s, 'c3'), green('c3'));
    expect(s.value).toBe('awaitingDeployApproval');
    expect(s.context.ci.fixAttempts).toBe(2);
  });

  it('stops for a person at the review gate when the same failure comes twice in a row, saying why', () => {
    let s = apply(atChecks(POLICY), red('c1', [failure('test', 'sig-a')]));
    s = apply(reviewed(s, 'c2'), red('c2', [failure('test', 'sig-a')]));
    expect(s.value).toBe('awaitingReviewApproval');
    expect(s.context.ci.fixAttempts).toBe(1);
    expect(s.context.ci.note).toContain('the same failure twice in a row (test)');
    expect(s.context.implementFeedback.filter((n) => n.startsWith('CI failed'))).toHaveLength(1);
  });

  it('does not call a failure the same twice in a row when the checks passed in between', () => {
    let s = apply(atChecks(POLICY), red('c1', [failure('test', 'sig-a')]));
    s = apply(reviewed(s, 'c2'), green('c2'));
    expect(s.value).toBe('awaitingDeployApproval');
    expect(s.context.ci.lastSignatures).toBeNull();
    // A person's review sends the work back; the next commit breaks the same test again.
    s = apply(s, { type: 'review.human_changes_requested', ...next(), by: 'github:wendy', summary: 'rename it', comments: [], maxReviewerRounds: 3 });
    s = apply(reviewed(s, 'c3'), red('c3', [failure('test', 'sig-a')]));
    expect(s.value).toBe('implementing');
    expect(s.context.ci).toMatchObject({ fixAttempts: 2, lastSignatures: ['sig-a'] });
  });

  it("reviews a person's push at the review gate where the loop stopped, without using a review round, then reads its checks", () => {
    let s = apply(atChecks(POLICY), red('c1', [failure('test', 'sig-a')]));
    s = apply(reviewed(s, 'c2'), red('c2', [failure('test', 'sig-a')]));
    expect(s.value).toBe('awaitingReviewApproval');
    const rounds = s.context.reviewRound;

    const [reviewing, actions] = transition(taskMachine, s, { type: 'branch.moved', ...next(), branch: 'stagegate/t-ci', sha: 'abc1234', before: 'c2', by: 'github:wendy' });

    expect(reviewing.value).toBe('reviewing');
    const dispatched = planDispatches(reviewing.context, actions.map((a) => ({ type: a.type, params: a.params })), reviewing.context.updatedAt);
    expect((dispatched.find((e) => e.kind === 'publish')?.payload as ReviewRequest).commit).toBe('abc1234');
    expect(reviewing.context.lastPush).toMatchObject({ sha: 'abc1234', by: 'github:wendy' });
    s = apply(reviewing, { type: 'review.approved', ...next(), jobId: job(reviewing), usage, verdict: { decision: 'approve', summary: 'the fix is right', comments: [], risk: 'low' }, testsPassed: true });
    expect(s.value).toBe('awaitingChecks');
    expect(s.context.reviewRound - s.context.freeReviews).toBe(rounds);
    expect(apply(s, green('abc1234')).value).toBe('awaitingDeployApproval');
  });

  it("reads the checks again on a person's push at the deploy gate, and the gate waits again (a new visit) once they pass", () => {
    let s = apply(atChecks(POLICY), green('c1'));
    const visit = s.context.gateVisits.deploy;
    s = apply(s, { type: 'branch.moved', ...next(), branch: 'stagegate/t-ci', sha: 'def5678', before: 'c1', by: 'github:wendy' });
    expect(s.value).toBe('awaitingChecks');
    expect(apply(s, green('c1'))).toBe(s);
    s = apply(s, green('def5678'));
    expect(s.value).toBe('awaitingDeployApproval');
    expect(s.context.gateVisits.deploy).toBe(visit + 1);
    expect(s.context.facts.checksGreen).toBe(true);
  });

  it("never auto-approves a person's push on the review's facts, even once its checks pass", () => {
    const onGreen: GatePolicy = { ...manual, autoApprove: [{ name: 'green-and-approved', when: { checksGreen: true, verdict: 'approve' } }] };
    // A red base the policy lets through: the gate waits, its rule not met.
    let s = apply(atChecks({ maxFixAttempts: 3, onRedBase: 'proceed' }, 'c1', onGreen), red('c1', [failure('test', 'sig-a')], true));
    expect(s.value).toBe('awaitingDeployApproval');
    s = apply(s, { type: 'branch.moved', ...next(), branch: 'stagegate/t-ci', sha: 'fed9876', before: 'c1', by: 'github:wendy' });
    s = apply(s, green('fed9876'));

    expect(s.value).toBe('awaitingDeployApproval');
    expect(s.context.decisions.filter((d) => d.via === 'policy')).toEqual([]);
    expect(autoApproveRefusal(s.context, 'deploy')).toBe('never auto-approved: the branch moved to fed9876 after the review, so a person decides');
    // The coder's own commit, reviewed, may pass on the rule as before.
    expect(apply(atChecks(POLICY, 'c1', onGreen), green('c1')).value).toBe('deploying');
  });

  it('stops for a person when the attempts are used up', () => {
    let s = apply(atChecks({ maxFixAttempts: 1, onRedBase: 'wait' }), red('c1', [failure('test', 'sig-a')]));
    s = apply(reviewed(s, 'c2'), red('c2', [failure('test', 'sig-b')]));
    expect(s.value).toBe('awaitingReviewApproval');
    expect(s.context.ci.note).toContain('1 CI-fix attempt used (at most 1) and test still fails');
  });

  it('does not try to fix checks that fail on the base branch too: waits, or goes on when the policy says so', () => {
    const waiting = apply(atChecks(POLICY), red('c1', [failure('test', 'sig-a')], true));
    expect(waiting.value).toBe('awaitingChecks');
    expect(waiting.context.ci).toMatchObject({ fixAttempts: 0, lastSignatures: null });
    expect(waiting.context.ci.note).toContain('the base branch is red: test fail on main too');
    expect(waiting.context.implementFeedback).toEqual([]);
    expect(apply(waiting, green('c1')).value).toBe('awaitingDeployApproval');

    const proceeding = apply(atChecks({ maxFixAttempts: 3, onRedBase: 'proceed' }), red('c1', [failure('test', 'sig-a')], true));
    expect(proceeding.value).toBe('awaitingDeployApproval');
    expect(proceeding.context.facts.checksGreen).toBe(false);
  });
});
