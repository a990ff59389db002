/**
 * Deploy approvals pinned to the branch head, through the pure step alone: an approval records
 * the head it was given for, a push (`branch.moved`) makes it stale, an approval naming another
 * commit is refused, and the deploy job merges exactly the head the gate was passed for.
 */
import { describe, expect, it } from 'vitest';
import type { DeployRequest, InboxMessage, Plan, TaskSubmit, Usage } from '../../core/bus/messages.js';
import type { GatePolicy } from '../../core/policy.js';
import type { TaskRecord } from '../../core/task-record.js';
import { applyMessage } from '../../orchestrator/apply-message.js';
import { countedApprovals, gateStatusOf, staleApprovals } from '../../orchestrator/gate-policy.js';
import { gateCheckOf } from '../../orchestrator/github/gate-check.js';

const TASK = 't-pin';
const T0 = '2025-03-01T10:00:00.000Z';
const at = (n: number) => new Date(Date.parse(T0) + n * 1000).toISOString();
const usage: Usage = { calls: 1, inputTokens: 10, cachedTokens: 0, outputTokens: 1, reasoningTokens: 0 };
const plan: Plan = { summary: 'greet', steps: [{ title: 'write greet()', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] };
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const manual = (required = 1): GatePolicy => ({ approvers: ['alice', 'bob'], required, autoApprove: false });

let n = 0;
const envelope = () => {
  n += 1;
  return { taskId: TASK, msgId: `m-${n}`, sentAt: at(n) };
};
const decide = (by: string, extra: { sha?: string; decision?: 'approve' | 'reject'; comment?: string } = {}): InboxMessage => ({
  type: 'gate.decide', ...envelope(), gate: 'deploy', decision: extra.decision ?? 'approve', by, via: 'cli',
  ...(extra.sha === undefined ? {} : { sha: extra.sha }),
  ...(extra.comment === undefined ? {} : { comment: extra.comment }),
});
const moved = (sha: string): InboxMessage => ({ type: 'branch.moved', ...envelope(), branch: `stagegate/${TASK}`, sha, by: 'github:mallory' });

function apply(record: TaskRecord | undefined, message: InboxMessage) {
  const outcome = applyMessage(record, message);
  if (outcome.kind !== 'commit') throw new Error(`${message.type} did not commit: ${JSON.stringify(outcome)}`);
  return outcome;
}

/** A task waiting at the deploy gate, its branch at A. */
function atDeployGate(required = 1): TaskRecord {
  const submit: TaskSubmit = {
    type: 'task.submit', ...envelope(),
    spec: { repo: '/tmp/repo', title: 'Greet', body: '', base: 'main', submittedBy: 'carol' },
    policies: { plan: manual(), review: manual(), deploy: manual(required) },
    maxReviewRounds: 2,
  };
  const messages: InboxMessage[] = [
    submit,
    { type: 'plan.proposed', ...envelope(), jobId: `${TASK}:plan:1`, usage, plan },
    { type: 'gate.decide', ...envelope(), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' },
    { type: 'code.committed', ...envelope(), jobId: `${TASK}:implement:1`, usage, branch: `stagegate/${TASK}`, commit: A, summary: 'greet()', attempts: 1 },
    { type: 'review.approved', ...envelope(), jobId: `${TASK}:review:1`, usage, testsPassed: true, verdict: { decision: 'approve', summary: 'fine', comments: [] } },
  ];
  const record = messages.reduce<TaskRecord | undefined>((r, m) => apply(r, m).record, undefined);
  if (record?.state !== 'awaitingDeployApproval') throw new Error(`expected the deploy gate, got ${record?.state}`);
  return record;
}

function deployJobOf(effects: ReturnType<typeof apply>['effects']): DeployRequest | undefined {
  const job = effects.find((e) => e.kind === 'publish' && (e.payload as { type?: string }).type === 'deploy.request');
  return job === undefined ? undefined : (job.payload as DeployRequest);
}

describe('deploy approvals pinned to the branch head', () => {
  it('records the head an approval without a sha was given for, and deploys exactly that commit', () => {
    const gate = atDeployGate();
    expect(gate.context.head).toBe(A);
    const { record, effects } = apply(gate, decide('alice'));
    expect(record.state).toBe('deploying');
    expect(record.context.decisions.at(-1)).toMatchObject({ gate: 'deploy', by: 'alice', counted: true, sha: A });
    expect(record.context.deployCommit).toBe(A);
    expect(deployJobOf(effects)?.commit).toBe(A);
  });

  it('makes an approval stale when the branch moves: the gate waits again, and the approval no longer counts', () => {
    const twoNeeded = atDeployGate(2);
    const approved = apply(twoNeeded, decide('alice')).record;
    expect(countedApprovals(approved.context, 'deploy')).toHaveLength(1);

    const { record, effects } = apply(approved, moved(B));

    expect(record.state).toBe('awaitingDeployApproval');
    expect(record.context.head).toBe(B);
    expect(countedApprovals(record.context, 'deploy')).toEqual([]);
    expect(staleApprovals(record.context, 'deploy')).toEqual([expect.objectContaining({ by: 'alice', sha: A })]);
    expect(gateStatusOf(record.state, record.context)).toMatchObject({ approvals: 0, required: 2 });
    expect(deployJobOf(effects)).toBeUndefined();
    // bob's approval alone does not pass: alice's went stale with the push.
    const afterBob = apply(record, decide('bob')).record;
    expect(afterBob.state).toBe('awaitingDeployApproval');
    expect(countedApprovals(afterBob.context, 'deploy').map((d) => d.by)).toEqual(['bob']);
  });

  it('lets the person whose approval went stale approve the new head, and deploys the new head', () => {
    const approved = apply(atDeployGate(2), decide('alice')).record;
    const movedOn = apply(apply(approved, moved(B)).record, decide('bob')).record;
    const { record, effects } = apply(movedOn, decide('alice'));
    expect(record.state).toBe('deploying');
    expect(record.context.deployCommit).toBe(B);
    expect(deployJobOf(effects)?.commit).toBe(B);
  });

  it('refuses an approval naming a commit that is not the head, and nothing counts', () => {
    const gate = atDeployGate();
    const outcome = applyMessage(gate, decide('alice', { sha: B.slice(0, 7) }));
    expect(outcome.kind).toBe('commit');
    const record = outcome.kind === 'commit' ? outcome.record : gate;
    expect(record.state).toBe('awaitingDeployApproval');
    expect(record.context.decisions.at(-1)).toMatchObject({
      by: 'alice', counted: false, sha: B.slice(0, 7),
      note: `this approval is for bbbbbbb, but the branch's head is aaaaaaa: only an approval of the current head counts`,
    });
    expect(countedApprovals(record.context, 'deploy')).toEqual([]);
  });

  it('counts an approval naming the head by a prefix of 7 digits, recording the full sha', () => {
    const { record } = apply(atDeployGate(), decide('alice', { sha: A.slice(0, 7) }));
    expect(record.state).toBe('deploying');
    expect(record.context.decisions.at(-1)).toMatchObject({ counted: true, sha: A });
  });

  it('ignores a push that leaves the branch where the task knows it', () => {
    const gate = atDeployGate();
    const outcome = applyMessage(gate, moved(A));
    expect(outcome.kind).toBe('effects-only');
  });

  it('keeps the approved commit for a retried deploy, even after the branch moved', () => {
    const deploying = apply(atDeployGate(), decide('alice')).record;
    const movedWhileDeploying = apply(deploying, moved(B)).record;
    expect(movedWhileDeploying.state).toBe('deploying');
    const failed = apply(movedWhileDeploying, {
      type: 'job.failed', ...envelope(), jobId: `${TASK}:deploy:1`, usage, stage: 'deploy', reason: 'GitHub would not merge: the branch moved',
    }).record;
    const { record, effects } = apply(failed, { type: 'task.retry', ...envelope(), by: 'carol' });
    expect(record.state).toBe('deploying');
    expect(deployJobOf(effects)?.commit).toBe(A);
  });

  it('does not move a finished task on a push', () => {
    const deploying = apply(atDeployGate(), decide('alice')).record;
    const done = apply(deploying, { type: 'deploy.succeeded', ...envelope(), jobId: `${TASK}:deploy:1`, usage, commit: A, target: 'main' }).record;
    expect(applyMessage(done, moved(B)).kind).toBe('effects-only');
  });
});

describe('the stagegate check run a task asks for', () => {
  it('is in progress on the head while the task waits at the deploy gate', () => {
    expect(gateCheckOf(atDeployGate())).toMatchObject({ sha: A, status: 'in_progress', title: 'Waiting at the deploy gate for aaaaaaa' });
  });

  it('succeeds once the deploy gate passed for that head, and only for it', () => {
    const deploying = apply(atDeployGate(), decide('alice')).record;
    expect(gateCheckOf(deploying)).toMatchObject({ sha: A, status: 'completed', conclusion: 'success', title: 'Deploy gate passed for aaaaaaa' });
    // A push while deploying: the new head was never approved.
    expect(gateCheckOf(apply(deploying, moved(B)).record)).toMatchObject({ sha: B, status: 'in_progress' });
  });

  it('fails on the head the deploy gate rejected, and on a failed or cancelled task', () => {
    const rejected = apply(atDeployGate(), decide('bob', { decision: 'reject', comment: 'not today' })).record;
    expect(rejected.state).toBe('implementing');
    expect(gateCheckOf(rejected)).toMatchObject({ sha: A, status: 'completed', conclusion: 'failure', title: 'Deploy gate rejected aaaaaaa' });
    const cancelled = apply(atDeployGate(), { type: 'task.cancel', ...envelope(), by: 'carol', reason: 'not needed' }).record;
    expect(gateCheckOf(cancelled)).toMatchObject({ sha: A, status: 'completed', conclusion: 'failure', title: 'Task cancelled' });
  });

  it('asks for nothing before the task has a commit', () => {
    const planning = applyMessage(undefined, {
      type: 'task.submit', ...envelope(), spec: { repo: '/tmp/repo', title: 'Greet', body: '', base: 'main', submittedBy: 'carol' },
      policies: { plan: manual(), review: manual(), deploy: manual() }, maxReviewRounds: 2,
    });
    expect(planning.kind === 'commit' ? gateCheckOf(planning.record) : 'no commit').toBeUndefined();
  });
});
