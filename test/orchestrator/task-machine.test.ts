/**
 * The statechart alone, through XState's pure `initialTransition`/`transition`: for every
 * transition and guard, the exact next state, the actions returned (only `dispatchJob` is
 * returned; `assign`s are applied to the snapshot) and the context fields the step changes.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { Gate, Plan, Stage, TaskSubmit, Usage, Verdict } from '../../core/bus/messages.js';
import type { GatePolicies, GatePolicy } from '../../core/policy.js';
import { planDispatches } from '../../orchestrator/effects.js';
import { taskMachine, type TaskEvent } from '../../orchestrator/task-machine.js';

type Snapshot = SnapshotFrom<typeof taskMachine>;

const TASK = 't-1';
const T0 = '2025-03-01T10:00:00.000Z';
/** `n` seconds after T0. */
const at = (n: number) => new Date(Date.parse(T0) + n * 1000).toISOString();

const manual = (approvers: string[] = ['alice', 'bob'], required = 1): GatePolicy => ({
  approvers,
  required,
  autoApprove: false,
});
const auto: GatePolicy = { approvers: ['alice'], required: 1, autoApprove: true };
const policiesWith = (over: Partial<GatePolicies> = {}): GatePolicies => ({
  plan: manual(),
  review: manual(),
  deploy: manual(),
  ...over,
});

const plan: Plan = {
  summary: 'Add a greeting',
  steps: [{ title: 'Write greet()', detail: 'in src/greet.ts' }],
  filesToTouch: ['src/greet.ts'],
  risks: [],
  acceptanceChecks: ['npm test'],
};
const approveVerdict: Verdict = { decision: 'approve', summary: 'looks good', comments: [] };
const changesVerdict: Verdict = {
  decision: 'request_changes',
  summary: 'needs a test',
  comments: [{ file: 'src/greet.ts', line: 3, body: 'add a test' }],
};
const usage = (calls: number, inputTokens = 0, outputTokens = 0): Usage => ({
  calls,
  inputTokens,
  cachedTokens: 0,
  outputTokens,
  reasoningTokens: 0,
});
const noUsage = usage(0);

function submit(over: { policies?: GatePolicies; maxReviewRounds?: number } = {}): TaskSubmit {
  return {
    type: 'task.submit',
    taskId: TASK,
    msgId: 'm-submit',
    sentAt: T0,
    spec: { repo: '/tmp/repo', title: 'Add a greeting', body: '', base: 'main', submittedBy: 'alice' },
    policies: over.policies ?? policiesWith(),
    maxReviewRounds: over.maxReviewRounds ?? 2,
  };
}

const current = (s: Snapshot): string => {
  if (s.context.currentJobId === null) throw new Error(`no current job in state ${String(s.value)}`);
  return s.context.currentJobId;
};
const envelope = (sentAt: string) => ({ taskId: TASK, msgId: `m-${sentAt}`, sentAt });

const ev = {
  planProposed: (jobId: string, sentAt = at(1), u = noUsage): TaskEvent => ({
    type: 'plan.proposed', ...envelope(sentAt), jobId, usage: u, plan,
  }),
  codeCommitted: (jobId: string, sentAt = at(2), u = noUsage): TaskEvent => ({
    type: 'code.committed', ...envelope(sentAt), jobId, usage: u, branch: `stagegate/${TASK}`, commit: 'c1', summary: 'added greet()', attempts: 1,
  }),
  reviewApproved: (jobId: string, sentAt = at(3), u = noUsage): TaskEvent => ({
    type: 'review.approved', ...envelope(sentAt), jobId, usage: u, verdict: approveVerdict, testsPassed: true,
  }),
  changesRequested: (jobId: string, sentAt = at(3), u = noUsage): TaskEvent => ({
    type: 'review.changes_requested', ...envelope(sentAt), jobId, usage: u, verdict: changesVerdict, testsPassed: false,
  }),
  deploySucceeded: (jobId: string, sentAt = at(5), u = noUsage): TaskEvent => ({
    type: 'deploy.succeeded', ...envelope(sentAt), jobId, usage: u, commit: 'c1', target: 'production',
  }),
  commandRequested: (jobId: string, opts: { command?: string; sentAt?: string } = {}): TaskEvent => ({
    type: 'command.approval_requested', ...envelope(opts.sentAt ?? at(2)), jobId, usage: noUsage,
    command: opts.command ?? 'npm install left-pad', pattern: 'npm install *', branch: `stagegate/${TASK}`, commit: 'c0',
    notes: 'wrote greet(); next: add the dependency and run the tests',
  }),
  jobFailed: (jobId: string, stage: Stage, sentAt = at(6)): TaskEvent => ({
    type: 'job.failed', ...envelope(sentAt), jobId, usage: noUsage, stage, reason: 'model returned 500 three times',
  }),
  decide: (gate: Gate, decision: 'approve' | 'reject', by: string, opts: { comment?: string; sentAt?: string } = {}): TaskEvent => ({
    type: 'gate.decide', ...envelope(opts.sentAt ?? at(4)), gate, decision, by, via: 'cli',
    ...(opts.comment === undefined ? {} : { comment: opts.comment }),
  }),
  cancel: (sentAt = at(7)): TaskEvent => ({ type: 'task.cancel', ...envelope(sentAt), by: 'carol', reason: 'no longer needed' }),
  retry: (sentAt = at(8)): TaskEvent => ({ type: 'task.retry', ...envelope(sentAt), by: 'carol' }),
};

function start(over: { policies?: GatePolicies; maxReviewRounds?: number } = {}) {
  const [snapshot, actions] = initialTransition(taskMachine, submit(over));
  return { snapshot, actions: summarise(actions) };
}

function step(snapshot: Snapshot, event: TaskEvent) {
  const [next, actions] = transition(taskMachine, snapshot, event);
  return { next, actions: summarise(actions) };
}

function summarise(actions: ReadonlyArray<{ type: string; params?: unknown }>) {
  return actions.map(({ type, params }) => ({ type, params }));
}

/** Applies each event in turn, failing loudly if one of them does not move the task. */
function drive(snapshot: Snapshot, ...events: Array<(s: Snapshot) => TaskEvent>): Snapshot {
  return events.reduce((s, make) => {
    const { next } = step(s, make(s));
    if (next === s) throw new Error(`event did not apply in state ${String(s.value)}`);
    return next;
  }, snapshot);
}

const dispatch = (stage: Stage) => [{ type: 'dispatchJob', params: { stage } }];

// Paths to each state under manual gates approved by alice.
const toPlanGate = (over = {}) => drive(start(over).snapshot, (s) => ev.planProposed(current(s)));
const toImplementing = (over = {}) => drive(toPlanGate(over), () => ev.decide('plan', 'approve', 'alice'));
const toReviewing = (over = {}) => drive(toImplementing(over), (s) => ev.codeCommitted(current(s)));
const toDeployGate = (over = {}) => drive(toReviewing(over), (s) => ev.reviewApproved(current(s)));
const toReviewGate = (over = {}) =>
  drive(toReviewing({ maxReviewRounds: 0, ...over }), (s) => ev.changesRequested(current(s)));
const toDeploying = (over = {}) => drive(toDeployGate(over), () => ev.decide('deploy', 'approve', 'alice'));
const toDone = (over = {}) => drive(toDeploying(over), (s) => ev.deploySucceeded(current(s)));
const toCommandGate = (over = {}) => drive(toImplementing(over), (s) => ev.commandRequested(current(s)));
const toCancelled = () => drive(toImplementing(), () => ev.cancel());

describe('task machine: planning', () => {
  it('starts in planning and dispatches plan job <task>:plan:1', () => {
    const { snapshot, actions } = start();
    expect(snapshot.value).toBe('planning');
    expect(actions).toEqual(dispatch('plan'));
    expect(snapshot.context.currentJobId).toBe('t-1:plan:1');
    expect(snapshot.context.attempts).toEqual({ plan: 1, implement: 0, review: 0, deploy: 0 });
    expect(snapshot.context.stages).toEqual([
      { stage: 'plan', attempt: 1, jobId: 't-1:plan:1', startedAt: T0, endedAt: null, outcome: null, usage: noUsage },
    ]);
  });

  it('moves to the plan gate when the current plan job proposes a plan', () => {
    const { next, actions } = step(start().snapshot, ev.planProposed('t-1:plan:1'));
    expect(next.value).toBe('awaitingPlanApproval');
    expect(actions).toEqual([]);
    expect(next.context.plan).toEqual(plan);
    expect(next.context.currentJobId).toBeNull();
    expect([next.context.gateVisits.plan, next.context.gateVisits.review, next.context.gateVisits.deploy]).toEqual([1, 0, 0]);
  });

  it('ignores a plan from a stale job and returns the same snapshot object', () => {
    const { snapshot } = start();
    const { next, actions } = step(snapshot, ev.planProposed('t-1:plan:0'));
    expect(next).toBe(snapshot);
    expect(actions).toEqual([]);
  });

  it('ignores a gate decision while no gate is open', () => {
    const { snapshot } = start();
    const { next } = step(snapshot, ev.decide('plan', 'approve', 'alice'));
    expect(next).toBe(snapshot);
  });
});

describe('task machine: plan gate', () => {
  it('passes to implementing on an approval by an allowed approver', () => {
    const { next, actions } = step(toPlanGate(), ev.decide('plan', 'approve', 'bob', { sentAt: at(4) }));
    expect(next.value).toBe('implementing');
    expect(actions).toEqual(dispatch('implement'));
    expect(next.context.currentJobId).toBe('t-1:implement:1');
    expect(next.context.decisions).toEqual([
      { gate: 'plan', visit: 1, decision: 'approve', by: 'bob', via: 'cli', at: at(4), counted: true },
    ]);
  });

  it('records an approval by a principal who is not an approver as not counted, and stays', () => {
    const gate = toPlanGate();
    const { next, actions } = step(gate, ev.decide('plan', 'approve', 'mallory'));
    expect(next.value).toBe('awaitingPlanApproval');
    expect(actions).toEqual([]);
    expect(next.context.decisions).toEqual([
      {
        gate: 'plan', visit: 1, decision: 'approve', by: 'mallory', via: 'cli', at: at(4),
        counted: false, note: 'mallory is not an approver for the plan gate',
      },
    ]);
  });

  it('records a rejection by a principal who is not an approver as not counted, and stays', () => {
    const { next } = step(toPlanGate(), ev.decide('plan', 'reject', 'mallory', { comment: 'no' }));
    expect(next.value).toBe('awaitingPlanApproval');
    expect(next.context.planFeedback).toEqual([]);
    expect(next.context.decisions.at(-1)).toMatchObject({ by: 'mallory', decision: 'reject', counted: false });
  });

  it('waits for a second distinct approver when two are required', () => {
    const gate = toPlanGate({ policies: policiesWith({ plan: manual(['alice', 'bob'], 2) }) });
    const first = step(gate, ev.decide('plan', 'approve', 'alice'));
    expect(first.next.value).toBe('awaitingPlanApproval');
    expect(first.actions).toEqual([]);
    expect(first.next.context.decisions.at(-1)).toMatchObject({ by: 'alice', counted: true });

    const second = step(first.next, ev.decide('plan', 'approve', 'bob'));
    expect(second.next.value).toBe('implementing');
    expect(second.actions).toEqual(dispatch('implement'));
  });

  it('does not count the same approver twice towards the quorum', () => {
    const gate = toPlanGate({ policies: policiesWith({ plan: manual(['alice', 'bob'], 2) }) });
    const once = drive(gate, () => ev.decide('plan', 'approve', 'alice'));
    const { next, actions } = step(once, ev.decide('plan', 'approve', 'alice'));
    expect(next.value).toBe('awaitingPlanApproval');
    expect(actions).toEqual([]);
    expect(next.context.decisions.at(-1)).toMatchObject({
      by: 'alice', counted: false, note: 'alice has already approved this gate',
    });
  });

  it('returns to planning on a rejection, with the comment as feedback and plan job attempt 2', () => {
    const { next, actions } = step(toPlanGate(), ev.decide('plan', 'reject', 'bob', { comment: 'split step 1' }));
    expect(next.value).toBe('planning');
    expect(actions).toEqual(dispatch('plan'));
    expect(next.context.planFeedback).toEqual(['split step 1']);
    expect(next.context.attempts.plan).toBe(2);
    expect(next.context.currentJobId).toBe('t-1:plan:2');
    expect(next.context.decisions.at(-1)).toMatchObject({ decision: 'reject', by: 'bob', comment: 'split step 1', counted: true });
  });

  it('does not count approvals from an earlier visit to the gate', () => {
    const gate = toPlanGate({ policies: policiesWith({ plan: manual(['alice', 'bob'], 2) }) });
    const secondVisit = drive(
      gate,
      () => ev.decide('plan', 'approve', 'alice'),
      () => ev.decide('plan', 'reject', 'bob'),
      (s) => ev.planProposed(current(s)),
    );
    expect(secondVisit.context.gateVisits.plan).toBe(2);
    const { next } = step(secondVisit, ev.decide('plan', 'approve', 'bob'));
    expect(next.value).toBe('awaitingPlanApproval');
    expect(next.context.decisions.at(-1)).toMatchObject({ by: 'bob', visit: 2, counted: true });
  });

  it('refuses a decision for another gate and stays', () => {
    const { next, actions } = step(toPlanGate(), ev.decide('deploy', 'approve', 'alice'));
    expect(next.value).toBe('awaitingPlanApproval');
    expect(actions).toEqual([]);
    expect(next.context.decisions).toEqual([
      {
        gate: 'plan', visit: 1, decision: 'approve', by: 'alice', via: 'cli', at: at(4),
        counted: false, note: 'the task is waiting at the plan gate, not the deploy gate',
      },
    ]);
  });

  it('passes on arrival under auto-approve, recording a decision by policy:auto-approve', () => {
    const { snapshot } = start({ policies: policiesWith({ plan: auto }) });
    const { next, actions } = step(snapshot, ev.planProposed('t-1:plan:1', at(1)));
    expect(next.value).toBe('implementing');
    expect(actions).toEqual(dispatch('implement'));
    expect(next.context.gateVisits.plan).toBe(1);
    expect(next.context.decisions).toEqual([
      { gate: 'plan', visit: 1, decision: 'approve', by: 'policy:auto-approve', via: 'policy', at: at(1), counted: true },
    ]);
  });
});

describe('task machine: implementing and reviewing', () => {
  it('moves to reviewing when the current implement job commits', () => {
    const implementing = toImplementing();
    const { next, actions } = step(implementing, ev.codeCommitted('t-1:implement:1'));
    expect(next.value).toBe('reviewing');
    expect(actions).toEqual(dispatch('review'));
    expect(next.context.implementation).toEqual({ commit: 'c1', summary: 'added greet()', attempts: 1 });
    expect(next.context.currentJobId).toBe('t-1:review:1');
    expect(next.context.reviewRound).toBe(1);
  });

  it('ignores a commit from a stale implement job', () => {
    const implementing = toImplementing();
    expect(step(implementing, ev.codeCommitted('t-1:implement:0')).next).toBe(implementing);
  });

  it('moves to the deploy gate when the current review approves', () => {
    const { next, actions } = step(toReviewing(), ev.reviewApproved('t-1:review:1'));
    expect(next.value).toBe('awaitingDeployApproval');
    expect(actions).toEqual([]);
    expect(next.context.verdict).toEqual(approveVerdict);
    expect([next.context.gateVisits.plan, next.context.gateVisits.review, next.context.gateVisits.deploy]).toEqual([1, 0, 1]);
    expect(next.context.currentJobId).toBeNull();
  });

  it('ignores a review verdict from a stale review job', () => {
    const reviewing = toReviewing();
    expect(step(reviewing, ev.reviewApproved('t-1:review:0')).next).toBe(reviewing);
    expect(step(reviewing, ev.changesRequested('t-1:review:0')).next).toBe(reviewing);
  });

  it('goes back to implementing with the comments on changes requested while rounds are left', () => {
    const { next, actions } = step(toReviewing({ maxReviewRounds: 2 }), ev.changesRequested('t-1:review:1'));
    expect(next.value).toBe('implementing');
    expect(actions).toEqual(dispatch('implement'));
    expect(next.context.reviewComments).toEqual(changesVerdict.comments);
    expect(next.context.verdict).toEqual(changesVerdict);
    expect(next.context.currentJobId).toBe('t-1:implement:2');
  });

  it('with maxReviewRounds 2 sends the 1st and 2nd changes back to implementing and the 3rd to the review gate', () => {
    const reached: string[] = [];
    let s = toReviewing({ maxReviewRounds: 2 });
    for (let round = 1; round <= 3; round++) {
      s = drive(s, (x) => ev.changesRequested(current(x)));
      reached.push(String(s.value));
      if (s.value === 'implementing') s = drive(s, (x) => ev.codeCommitted(current(x)));
    }
    expect(reached).toEqual(['implementing', 'implementing', 'awaitingReviewApproval']);
    expect(s.context.reviewRound).toBe(3);
    expect(s.context.gateVisits.review).toBe(1);
  });

  it('with maxReviewRounds 0 sends the first changes requested to the review gate', () => {
    const { next, actions } = step(toReviewing({ maxReviewRounds: 0 }), ev.changesRequested('t-1:review:1'));
    expect(next.value).toBe('awaitingReviewApproval');
    expect(actions).toEqual([]);
    expect(next.context.gateVisits.review).toBe(1);
  });

  it('passes the review gate to the deploy gate on an approval', () => {
    const { next, actions } = step(toReviewGate(), ev.decide('review', 'approve', 'bob'));
    expect(next.value).toBe('awaitingDeployApproval');
    expect(actions).toEqual([]);
    expect(next.context.gateVisits.deploy).toBe(1);
    expect(next.context.decisions.at(-1)).toMatchObject({ gate: 'review', by: 'bob', counted: true });
  });

  it('sends a review-gate rejection back to implementing with the comment as feedback', () => {
    const { next, actions } = step(toReviewGate(), ev.decide('review', 'reject', 'bob', { comment: 'rename greet' }));
    expect(next.value).toBe('implementing');
    expect(actions).toEqual(dispatch('implement'));
    expect(next.context.implementFeedback).toEqual(['rename greet']);
    expect(next.context.currentJobId).toBe('t-1:implement:2');
  });

  it('passes the review gate on arrival under auto-approve', () => {
    const reviewing = toReviewing({ maxReviewRounds: 0, policies: policiesWith({ review: auto }) });
    const { next, actions } = step(reviewing, ev.changesRequested('t-1:review:1', at(3)));
    expect(next.value).toBe('awaitingDeployApproval');
    expect(actions).toEqual([]);
    expect(next.context.decisions.at(-1)).toEqual({
      gate: 'review', visit: 1, decision: 'approve', by: 'policy:auto-approve', via: 'policy', at: at(3), counted: true,
    });
  });
});

describe('task machine: deploy gate and deploying', () => {
  it('moves to deploying and dispatches the deploy job on an approval', () => {
    const { next, actions } = step(toDeployGate(), ev.decide('deploy', 'approve', 'alice'));
    expect(next.value).toBe('deploying');
    expect(actions).toEqual(dispatch('deploy'));
    expect(next.context.currentJobId).toBe('t-1:deploy:1');
  });

  it('sends a deploy-gate rejection back to implementing with the comment as feedback', () => {
    const { next, actions } = step(toDeployGate(), ev.decide('deploy', 'reject', 'bob', { comment: 'not on a Friday' }));
    expect(next.value).toBe('implementing');
    expect(actions).toEqual(dispatch('implement'));
    expect(next.context.implementFeedback).toEqual(['not on a Friday']);
  });

  it('does not count a deploy approval from before a rejection at the next visit', () => {
    const twoNeeded = { policies: policiesWith({ deploy: manual(['alice', 'bob'], 2) }) };
    const backAtGate = drive(
      toDeployGate(twoNeeded),
      () => ev.decide('deploy', 'approve', 'alice'),
      () => ev.decide('deploy', 'reject', 'bob'),
      (s) => ev.codeCommitted(current(s)),
      (s) => ev.reviewApproved(current(s)),
    );
    expect(backAtGate.context.gateVisits.deploy).toBe(2);
    const { next } = step(backAtGate, ev.decide('deploy', 'approve', 'bob'));
    expect(next.value).toBe('awaitingDeployApproval');
  });

  it('deploys straight after a review approval under deploy auto-approve', () => {
    const reviewing = toReviewing({ policies: policiesWith({ deploy: auto }) });
    const { next, actions } = step(reviewing, ev.reviewApproved('t-1:review:1'));
    expect(next.value).toBe('deploying');
    expect(actions).toEqual(dispatch('deploy'));
    expect(next.context.decisions.at(-1)).toMatchObject({ gate: 'deploy', visit: 1, by: 'policy:auto-approve', counted: true });
  });

  it('finishes in done, a final status, when the current deploy job succeeds', () => {
    const { next, actions } = step(toDeploying(), ev.deploySucceeded('t-1:deploy:1', at(5)));
    expect(next.value).toBe('done');
    expect(next.status).toBe('done');
    expect(actions).toEqual([]);
    expect(next.context.deployed).toEqual({ commit: 'c1', target: 'production' });
    expect(next.context.stages.at(-1)).toMatchObject({ stage: 'deploy', endedAt: at(5), outcome: 'deployed' });
  });

  it('ignores a deploy result from a stale job', () => {
    const deploying = toDeploying();
    expect(step(deploying, ev.deploySucceeded('t-1:deploy:0')).next).toBe(deploying);
  });
});

describe('task machine: command gate', () => {
  const COMMAND = 'npm install left-pad';
  const NOTES = 'wrote greet(); next: add the dependency and run the tests';
  const approvedNote = `A person approved running \`${COMMAND}\`: run it now and carry on. Where you left off: ${NOTES}`;

  it('waits at the command gate when the current implement job asks to run a command, dispatching nothing', () => {
    const { next, actions } = step(toImplementing(), ev.commandRequested('t-1:implement:1', { sentAt: at(2) }));
    expect(next.value).toBe('awaitingCommandApproval');
    expect(actions).toEqual([]);
    expect(next.context.pendingCommand).toEqual({ command: COMMAND, pattern: 'npm install *', notes: NOTES, commit: 'c0' });
    expect(next.context.currentJobId).toBeNull();
    expect(next.context.gateVisits).toEqual({ plan: 1, review: 0, deploy: 0, command: 1 });
    expect(next.context.stages.at(-1)).toMatchObject({
      stage: 'implement', attempt: 1, jobId: 't-1:implement:1', endedAt: at(2), outcome: 'waiting for approval',
    });
  });

  it('ignores a command request from a stale implement job and returns the same snapshot object', () => {
    const implementing = toImplementing();
    const { next, actions } = step(implementing, ev.commandRequested('t-1:implement:0'));
    expect(next).toBe(implementing);
    expect(actions).toEqual([]);
  });

  it('resumes implementing on an approval, with the command approved and the job told where it left off', () => {
    const { next, actions } = step(toCommandGate(), ev.decide('command', 'approve', 'bob', { comment: 'fine', sentAt: at(4) }));
    expect(next.value).toBe('implementing');
    expect(actions).toEqual(dispatch('implement'));
    expect(next.context.approvedCommands).toEqual([COMMAND]);
    expect(next.context.implementFeedback).toEqual([approvedNote]);
    expect(next.context.pendingCommand).toBeNull();
    expect(next.context.attempts.implement).toBe(2);
    expect(next.context.currentJobId).toBe('t-1:implement:2');
    expect(next.context.decisions.at(-1)).toEqual({
      gate: 'command', visit: 1, decision: 'approve', by: 'bob', via: 'cli', comment: 'fine', at: at(4), counted: true,
    });

    expect(planDispatches(next.context, actions, at(4))).toEqual([
      {
        kind: 'publish',
        subject: 'sg.jobs.coder',
        msgId: 't-1:implement:2:dispatch',
        payload: expect.objectContaining({
          type: 'implement.request',
          msgId: 't-1:implement:2',
          attempt: 2,
          approvedCommands: [COMMAND],
          feedback: [approvedNote],
        }),
      },
    ]);
  });

  it('records an approval by a principal who is not an approver as not counted, and stays', () => {
    const gate = toCommandGate();
    const { next, actions } = step(gate, ev.decide('command', 'approve', 'mallory'));
    expect(next.value).toBe('awaitingCommandApproval');
    expect(actions).toEqual([]);
    expect(next.context.pendingCommand).toEqual(gate.context.pendingCommand);
    expect(next.context.approvedCommands).toEqual([]);
    expect(next.context.decisions.at(-1)).toEqual({
      gate: 'command', visit: 1, decision: 'approve', by: 'mallory', via: 'cli', at: at(4),
      counted: false, note: 'mallory is not an approver for the command gate',
    });
  });

  it('waits for a second distinct approver when policies.command requires two', () => {
    const gate = toCommandGate({ policies: policiesWith({ command: manual(['alice', 'bob'], 2) }) });
    const first = step(gate, ev.decide('command', 'approve', 'alice'));
    expect(first.next.value).toBe('awaitingCommandApproval');
    expect(first.actions).toEqual([]);
    expect(first.next.context.decisions.at(-1)).toMatchObject({ gate: 'command', by: 'alice', counted: true });

    const second = step(first.next, ev.decide('command', 'approve', 'bob'));
    expect(second.next.value).toBe('implementing');
    expect(second.actions).toEqual(dispatch('implement'));
    expect(second.next.context.approvedCommands).toEqual([COMMAND]);
  });

  it('is decided by the deploy policy when policies.command is not set', () => {
    const gate = toCommandGate({ policies: policiesWith({ deploy: manual(['dave']) }) });
    expect(gate.context.policies.command).toBeUndefined();
    const byPlanApprover = step(gate, ev.decide('command', 'approve', 'alice'));
    expect(byPlanApprover.next.value).toBe('awaitingCommandApproval');
    expect(byPlanApprover.next.context.decisions.at(-1)).toMatchObject({
      by: 'alice', counted: false, note: 'alice is not an approver for the command gate',
    });

    const byDeployApprover = step(byPlanApprover.next, ev.decide('command', 'approve', 'dave'));
    expect(byDeployApprover.next.value).toBe('implementing');
    expect(byDeployApprover.next.context.approvedCommands).toEqual([COMMAND]);
  });

  it('resumes implementing without the command on a rejection, telling the job it was not approved', () => {
    const gate = toCommandGate();
    const { next, actions } = step(gate, ev.decide('command', 'reject', 'alice', { comment: 'no new dependencies' }));
    expect(next.value).toBe('implementing');
    expect(actions).toEqual(dispatch('implement'));
    expect(next.context.approvedCommands).toEqual(gate.context.approvedCommands);
    expect(next.context.approvedCommands).toEqual([]);
    expect(next.context.implementFeedback).toEqual([
      `A person did not approve running \`${COMMAND}\` (no new dependencies): do without it. Where you left off: ${NOTES}`,
    ]);
    expect(next.context.pendingCommand).toBeNull();
    expect(next.context.currentJobId).toBe('t-1:implement:2');
    expect(next.context.decisions.at(-1)).toMatchObject({ gate: 'command', decision: 'reject', by: 'alice', counted: true });
  });

  it('passes on arrival under auto-approve on the command policy, recording a decision by policy:auto-approve', () => {
    const implementing = toImplementing({ policies: policiesWith({ command: auto }) });
    const { next, actions } = step(implementing, ev.commandRequested('t-1:implement:1', { sentAt: at(2) }));
    expect(next.value).toBe('implementing');
    expect(actions).toEqual(dispatch('implement'));
    expect(next.context.gateVisits.command).toBe(1);
    expect(next.context.decisions.at(-1)).toEqual({
      gate: 'command', visit: 1, decision: 'approve', by: 'policy:auto-approve', via: 'policy', at: at(2), counted: true,
    });
    expect(next.context.approvedCommands).toEqual([COMMAND]);
    expect(next.context.implementFeedback).toEqual([approvedNote]);
    expect(next.context.pendingCommand).toBeNull();
    expect(next.context.currentJobId).toBe('t-1:implement:2');
    expect(next.context.stages.map((r) => [r.jobId, r.outcome])).toEqual([
      ['t-1:plan:1', 'plan proposed'],
      ['t-1:implement:1', 'waiting for approval'],
      ['t-1:implement:2', null],
    ]);
  });

  it('cancels a task at the command gate, naming the implement stage', () => {
    const { next, actions } = step(toCommandGate(), ev.cancel(at(7)));
    expect(next.value).toBe('cancelled');
    expect(next.status).toBe('done');
    expect(actions).toEqual([]);
    expect(next.context.error).toEqual({ stage: 'implement', reason: 'cancelled by carol: no longer needed' });
    expect(next.context.currentJobId).toBeNull();
  });

  it('opens a second visit for a second request, where approvals from the first do not count', () => {
    const twoNeeded = { policies: policiesWith({ command: manual(['alice', 'bob'], 2) }) };
    const secondVisit = drive(
      toCommandGate(twoNeeded),
      () => ev.decide('command', 'approve', 'alice'),
      () => ev.decide('command', 'approve', 'bob'),
      (s) => ev.commandRequested(current(s), { command: 'npm run db:migrate', sentAt: at(5) }),
    );
    expect(secondVisit.value).toBe('awaitingCommandApproval');
    expect(secondVisit.context.gateVisits.command).toBe(2);
    expect(secondVisit.context.pendingCommand?.command).toBe('npm run db:migrate');

    const first = step(secondVisit, ev.decide('command', 'approve', 'alice'));
    expect(first.next.value).toBe('awaitingCommandApproval');
    expect(first.next.context.decisions.at(-1)).toMatchObject({ by: 'alice', visit: 2, counted: true });

    const second = step(first.next, ev.decide('command', 'approve', 'bob'));
    expect(second.next.value).toBe('implementing');
    expect(second.actions).toEqual(dispatch('implement'));
    expect(second.next.context.approvedCommands).toEqual([COMMAND, 'npm run db:migrate']);
    expect(second.next.context.currentJobId).toBe('t-1:implement:3');
  });
});

const running: Array<[Stage, () => Snapshot]> = [
  ['plan', () => start().snapshot],
  ['implement', () => toImplementing()],
  ['review', () => toReviewing()],
  ['deploy', () => toDeploying()],
];

describe('task machine: failures and retries', () => {
  it.each(running)('fails with error {stage: %s, reason} when the current job fails', (stage, reach) => {
    const s = reach();
    const jobId = current(s);
    const { next, actions } = step(s, ev.jobFailed(jobId, stage, at(6)));
    expect(next.value).toBe('failed');
    expect(actions).toEqual([]);
    expect(next.context.error).toEqual({ stage, reason: 'model returned 500 three times' });
    expect(next.context.currentJobId).toBeNull();
    expect(next.context.stages.at(-1)).toMatchObject({ jobId, endedAt: at(6), outcome: 'failed' });
  });

  it.each(running)('ignores a failure of a stale %s job', (stage, reach) => {
    const s = reach();
    expect(step(s, ev.jobFailed(`t-1:${stage}:0`, stage)).next).toBe(s);
  });

  it('records the stage of the state that failed, not the stage the failure claims', () => {
    const { snapshot } = start();
    const { next } = step(snapshot, ev.jobFailed('t-1:plan:1', 'deploy'));
    expect(next.context.error?.stage).toBe('plan');
    const retried = step(next, ev.retry());
    expect(retried.next.value).toBe('planning');
    expect(retried.next.context.decisions).toEqual([]);
  });

  it.each(running)('retries a task failed at %s in that stage with a new attempt', (stage, reach) => {
    const s = reach();
    const failed = drive(s, (x) => ev.jobFailed(current(x), stage));
    const attempt = failed.context.attempts[stage] + 1;
    const { next, actions } = step(failed, ev.retry(at(8)));
    expect(next.value).toBe({ plan: 'planning', implement: 'implementing', review: 'reviewing', deploy: 'deploying' }[stage]);
    expect(actions).toEqual(dispatch(stage));
    expect(next.context.error).toBeNull();
    expect(next.context.attempts[stage]).toBe(attempt);
    expect(next.context.currentJobId).toBe(`t-1:${stage}:${attempt}`);
    expect(next.context.stages.at(-1)).toMatchObject({ stage, attempt, startedAt: at(8), endedAt: null });
  });

  it('does not use up a review round when a failed review is retried', () => {
    const retried = drive(
      toReviewing({ maxReviewRounds: 1 }),
      (s) => ev.jobFailed(current(s), 'review'),
      () => ev.retry(),
    );
    expect(retried.context.reviewRound).toBe(1);
    expect(step(retried, ev.changesRequested(current(retried))).next.value).toBe('implementing');
  });

  it.each([
    ['planning', () => start().snapshot],
    ['awaitingPlanApproval', () => toPlanGate()],
    ['deploying', () => toDeploying()],
  ] as const)('ignores task.retry in %s, which is not failed', (_state, reach) => {
    const s = reach();
    const { next, actions } = step(s, ev.retry());
    expect(next).toBe(s);
    expect(actions).toEqual([]);
  });
});

describe('task machine: cancel and final states', () => {
  const cancellable: Array<[string, Stage, () => Snapshot]> = [
    ['planning', 'plan', () => start().snapshot],
    ['awaitingPlanApproval', 'plan', () => toPlanGate()],
    ['implementing', 'implement', () => toImplementing()],
    ['reviewing', 'review', () => toReviewing()],
    ['awaitingReviewApproval', 'review', () => toReviewGate()],
    ['awaitingDeployApproval', 'deploy', () => toDeployGate()],
    ['deploying', 'deploy', () => toDeploying()],
    ['failed', 'implement', () => drive(toImplementing(), (s) => ev.jobFailed(current(s), 'implement'))],
  ];

  it.each(cancellable)('cancels a task in %s, naming the stage and who cancelled', (state, stage, reach) => {
    const s = reach();
    expect(s.value).toBe(state);
    const { next, actions } = step(s, ev.cancel(at(7)));
    expect(next.value).toBe('cancelled');
    expect(next.status).toBe('done');
    expect(actions).toEqual([]);
    expect(next.context.error).toEqual({ stage, reason: 'cancelled by carol: no longer needed' });
    expect(next.context.currentJobId).toBeNull();
    expect(next.context.updatedAt).toBe(at(7));
  });

  const finals: Array<[string, () => Snapshot]> = [
    ['done', () => toDone()],
    ['cancelled', () => toCancelled()],
  ];
  const anyEvent: Array<(s: Snapshot) => TaskEvent> = [
    () => ev.cancel(),
    () => ev.retry(),
    () => ev.decide('deploy', 'approve', 'alice'),
    (s) => ev.deploySucceeded(s.context.stages.at(-1)?.jobId ?? 'none'),
    (s) => ev.jobFailed(s.context.stages.at(-1)?.jobId ?? 'none', 'deploy'),
  ];

  it.each(finals)('changes nothing on any event once %s', (_state, reach) => {
    const s = reach();
    for (const make of anyEvent) {
      const { next, actions } = step(s, make(s));
      expect(next).toBe(s);
      expect(actions).toEqual([]);
    }
  });
});

describe('task machine: usage and timing', () => {
  it('adds the usage of each result to the task and to its stage record', () => {
    const s = drive(
      start().snapshot,
      (x) => ev.planProposed(current(x), at(1), usage(1, 100, 10)),
      () => ev.decide('plan', 'approve', 'alice'),
      (x) => ev.codeCommitted(current(x), at(2), usage(3, 1000, 200)),
    );
    expect(s.context.usage).toEqual(usage(4, 1100, 210));
    expect(s.context.stages.map((r) => [r.stage, r.usage])).toEqual([
      ['plan', usage(1, 100, 10)],
      ['implement', usage(3, 1000, 200)],
      ['review', noUsage],
    ]);
  });

  it('stamps stage records with startedAt and endedAt from the events sentAt', () => {
    const s = drive(
      start().snapshot,
      (x) => ev.planProposed(current(x), at(10)),
      () => ev.decide('plan', 'approve', 'alice', { sentAt: at(20) }),
      (x) => ev.codeCommitted(current(x), at(30)),
    );
    expect(s.context.stages.map(({ stage, startedAt, endedAt, outcome }) => ({ stage, startedAt, endedAt, outcome }))).toEqual([
      { stage: 'plan', startedAt: T0, endedAt: at(10), outcome: 'plan proposed' },
      { stage: 'implement', startedAt: at(20), endedAt: at(30), outcome: 'committed' },
      { stage: 'review', startedAt: at(30), endedAt: null, outcome: null },
    ]);
    expect(s.context.updatedAt).toBe(at(30));
  });
});
