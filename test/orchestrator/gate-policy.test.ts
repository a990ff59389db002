/**
 * Gate policies in the statechart and the pure step, through `transition()` and `applyMessage`
 * alone: auto-approval rules on the task's facts, separation of duties, quorum with mixed
 * principals, and gate timers (reminders and each expiry action). Time is only ever the
 * events' `sentAt`: a timer event carries the moment it fired, so the tests set the clock by
 * choosing it.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { Gate, GateTimerKind, InboxMessage, Plan, TaskSubmit, Usage, Verdict } from '../../core/bus/messages.js';
import type { GatePolicies, GatePolicy, PrincipalFacts } from '../../core/policy.js';
import type { TaskRecord } from '../../core/task-record.js';
import { applyMessage } from '../../orchestrator/apply-message.js';
import { taskMachine, type TaskEvent } from '../../orchestrator/task-machine.js';

type Snapshot = SnapshotFrom<typeof taskMachine>;

const TASK = 't-pol';
const T0 = '2025-03-01T10:00:00.000Z';
const MIN = 60_000;
/** `n` minutes after T0. */
const at = (n: number) => new Date(Date.parse(T0) + n * MIN).toISOString();
const noUsage: Usage = { calls: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 };
const plan: Plan = { summary: 's', steps: [{ title: 't', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] };

const manual = (over: Partial<GatePolicy> = {}): GatePolicy => ({ approvers: ['alice', 'bob'], required: 1, autoApprove: false, ...over });
const policiesWith = (over: Partial<GatePolicies> = {}): GatePolicies => ({ plan: manual(), review: manual(), deploy: manual(), ...over });

let seq = 0;
const envelope = (sentAt: string) => ({ taskId: TASK, msgId: `m-${++seq}`, sentAt });

interface Change {
  changedFiles?: string[];
  linesChanged?: number;
}

const ev = {
  planProposed: (s: Snapshot, sentAt = at(1)): TaskEvent => ({ type: 'plan.proposed', ...envelope(sentAt), jobId: current(s), usage: noUsage, plan }),
  codeCommitted: (s: Snapshot, change: Change = {}, sentAt = at(2)): TaskEvent => ({
    type: 'code.committed', ...envelope(sentAt), jobId: current(s), usage: noUsage, branch: `stagegate/${TASK}`,
    commit: `c${seq}`, summary: 'done', attempts: 1, ...change,
  }),
  review: (s: Snapshot, verdict: Partial<Verdict> = {}, opts: { testsPassed?: boolean; change?: Change; sentAt?: string } = {}): TaskEvent => {
    const v: Verdict = { decision: 'approve', summary: 'ok', comments: [], risk: 'low', ...verdict };
    return {
      type: v.decision === 'approve' ? 'review.approved' : 'review.changes_requested',
      ...envelope(opts.sentAt ?? at(3)), jobId: current(s), usage: noUsage, verdict: v, testsPassed: opts.testsPassed ?? true, ...opts.change,
    };
  },
  commandRequested: (s: Snapshot, sentAt = at(2)): TaskEvent => ({
    type: 'command.approval_requested', ...envelope(sentAt), jobId: current(s), usage: noUsage,
    command: 'npm install left-pad', pattern: 'npm install', branch: `stagegate/${TASK}`, commit: null, notes: 'half way',
  }),
  decide: (
    gate: Gate,
    decision: 'approve' | 'reject',
    by: string,
    opts: { via?: 'cli' | 'api' | 'github' | 'slack'; principal?: PrincipalFacts; sentAt?: string } = {},
  ): TaskEvent => ({
    type: 'gate.decide', ...envelope(opts.sentAt ?? at(4)), gate, decision, by, via: opts.via ?? 'cli',
    ...(opts.principal === undefined ? {} : { principal: opts.principal }),
  }),
  timer: (gate: Gate, visit: number, kind: GateTimerKind, sentAt: string, fireAt = sentAt): TaskEvent => ({
    type: 'gate.timer_fired', ...envelope(sentAt), gate, visit, kind, fireAt,
  }),
};

function current(s: Snapshot): string {
  if (s.context.currentJobId === null) throw new Error(`no current job in ${String(s.value)}`);
  return s.context.currentJobId;
}

function submit(policies: GatePolicies, submittedBy = 'sam', maxReviewRounds = 1): TaskSubmit {
  return {
    type: 'task.submit', taskId: TASK, msgId: 'm-submit', sentAt: T0,
    spec: { repo: '/tmp/repo', title: 'Add a greeting', body: '', base: 'main', submittedBy },
    policies, maxReviewRounds,
  };
}

const start = (policies: GatePolicies, submittedBy?: string) => initialTransition(taskMachine, submit(policies, submittedBy))[0];

function step(s: Snapshot, event: TaskEvent) {
  const [next, actions] = transition(taskMachine, s, event);
  return { next, actions: actions.map(({ type, params }) => ({ type, params })) };
}

function drive(s: Snapshot, ...events: Array<(s: Snapshot) => TaskEvent>): Snapshot {
  return events.reduce((acc, make) => {
    const { next } = step(acc, make(acc));
    if (next === acc) throw new Error(`event did not apply in ${String(acc.value)}`);
    return next;
  }, s);
}

const toImplementing = (policies: GatePolicies, submittedBy?: string) =>
  drive(start(policies, submittedBy), ev.planProposed, () => ev.decide('plan', 'approve', 'alice'));
const toDeployGate = (policies: GatePolicies, change: Change = {}, verdict: Partial<Verdict> = {}, testsPassed = true) =>
  drive(toImplementing(policies), (s) => ev.codeCommitted(s, change), (s) => ev.review(s, verdict, { testsPassed }));

const docsOnly: GatePolicy = manual({
  autoApprove: [{ name: 'docs-only', when: { pathsMatch: ['docs/**', '*.md'], checksGreen: true } }],
});

describe('auto-approval rules at the deploy gate', () => {
  it('passes when every changed path matches, recording the rule as the decider with why it held', () => {
    const s = toDeployGate(policiesWith({ deploy: docsOnly }), { changedFiles: ['docs/a.md', 'README.md'], linesChanged: 4 });
    expect(s.value).toBe('deploying');
    expect(s.context.decisions.at(-1)).toEqual({
      gate: 'deploy', visit: 1, decision: 'approve', by: 'policy:docs-only', via: 'policy', rule: 'docs-only',
      comment: 'rule docs-only: all 2 changed paths match docs/**, *.md; checks green', at: at(3), counted: true, sha: s.context.head,
    });
    expect(s.context.head).toBe(s.context.implementation?.commit);
  });

  it('waits for people when one changed path is outside the globs', () => {
    const s = toDeployGate(policiesWith({ deploy: docsOnly }), { changedFiles: ['docs/a.md', 'src/app.ts'] });
    expect(s.value).toBe('awaitingDeployApproval');
    expect(s.context.decisions).toHaveLength(1);
  });

  it('waits for people when the changed paths are unknown (a coder that does not report them)', () => {
    const s = toDeployGate(policiesWith({ deploy: docsOnly }));
    expect(s.value).toBe('awaitingDeployApproval');
  });

  it("uses the reviewer's measure of the change when it is the latest", () => {
    const s = drive(
      toImplementing(policiesWith({ deploy: docsOnly })),
      (x) => ev.codeCommitted(x, { changedFiles: ['src/app.ts'] }),
      (x) => ev.review(x, {}, { change: { changedFiles: ['docs/a.md'], linesChanged: 2 } }),
    );
    expect(s.value).toBe('deploying');
    expect(s.context.facts).toMatchObject({ changedFiles: ['docs/a.md'], linesChanged: 2, checksGreen: true, verdict: 'approve', risk: 'low' });
  });

  it('forgets the facts of an earlier commit', () => {
    const first = toDeployGate(policiesWith({ deploy: docsOnly }), { changedFiles: ['src/app.ts'] });
    const again = drive(first, () => ev.decide('deploy', 'reject', 'bob'), (x) => ev.codeCommitted(x));
    expect(again.context.facts).toEqual({ commit: again.context.implementation?.commit });
  });

  it.each<[string, GatePolicy['autoApprove'], Change, Partial<Verdict>, boolean, string]>([
    ['a small change passes maxLinesChanged', [{ name: 'small', when: { maxLinesChanged: 20 } }], { linesChanged: 20 }, {}, true, 'deploying'],
    ['a large change does not', [{ name: 'small', when: { maxLinesChanged: 20 } }], { linesChanged: 21 }, {}, true, 'awaitingDeployApproval'],
    ['green checks pass checksGreen', [{ name: 'green', when: { checksGreen: true } }], {}, {}, true, 'deploying'],
    ['an approved review passes verdict', [{ name: 'reviewed', when: { verdict: 'approve' } }], {}, {}, true, 'deploying'],
    ['low risk passes maxRisk low', [{ name: 'safe', when: { maxRisk: 'low' } }], {}, { risk: 'low' }, true, 'deploying'],
    ['medium risk does not pass maxRisk low', [{ name: 'safe', when: { maxRisk: 'low' } }], {}, { risk: 'medium' }, true, 'awaitingDeployApproval'],
    ['a verdict without risk counts as high', [{ name: 'safe', when: { maxRisk: 'medium' } }], {}, { risk: undefined }, true, 'awaitingDeployApproval'],
    [
      'the second rule passes when the first does not',
      [{ name: 'tiny', when: { maxLinesChanged: 1 } }, { name: 'safe', when: { maxRisk: 'low', verdict: 'approve' } }],
      { linesChanged: 50 }, {}, true, 'deploying',
    ],
  ])('%s', (_name, autoApprove, change, verdict, testsPassed, state) => {
    const s = toDeployGate(policiesWith({ deploy: manual({ autoApprove }) }), change, verdict, testsPassed);
    expect(s.value).toBe(state);
  });

  it('reads checksGreen from the tests the reviewer ran: failing tests never pass it', () => {
    const policies = policiesWith({ review: manual({ autoApprove: [{ name: 'green', when: { checksGreen: true } }] }) });
    const atReviewGate = drive(toImplementing(policies), (x) => ev.codeCommitted(x), (x) => ev.review(x, { decision: 'request_changes' }, { testsPassed: false }));
    const s = drive(atReviewGate, (x) => ev.codeCommitted(x), (x) => ev.review(x, { decision: 'request_changes' }, { testsPassed: false }));
    expect(s.value).toBe('awaitingReviewApproval');
  });

  it('never passes the review gate on a verdict rule: that gate follows a review asking for changes', () => {
    const policies = policiesWith({ review: manual({ autoApprove: [{ name: 'reviewed', when: { verdict: 'approve' } }] }) });
    const s = drive(
      toImplementing(policies),
      (x) => ev.codeCommitted(x), (x) => ev.review(x, { decision: 'request_changes' }),
      (x) => ev.codeCommitted(x), (x) => ev.review(x, { decision: 'request_changes' }),
    );
    expect(s.value).toBe('awaitingReviewApproval');
  });

  it('lists the gate as auto-approved in the audit entry', () => {
    const record = applyAll(undefined, submit(policiesWith({ plan: manual({ autoApprove: [{ name: 'always', when: {} }] }) })));
    const outcome = applyMessage(record, { type: 'plan.proposed', ...envelope(at(1)), jobId: `${TASK}:plan:1`, usage: noUsage, plan });
    expect(outcome.kind === 'commit' && outcome.record.state).toBe('implementing');
    expect(auditOf(outcome)).toMatchObject({ accepted: true, autoApproved: ['plan'] });
  });
});

describe('separation of duties', () => {
  const policies = policiesWith({ deploy: manual({ approvers: ['sam', 'bob'], separationOfDuties: true }) });

  it("counts the submitter's approval but keeps the task at the gate", () => {
    const { next } = step(toDeployGate(policies), ev.decide('deploy', 'approve', 'sam'));
    expect(next.value).toBe('awaitingDeployApproval');
    expect(next.context.decisions.at(-1)).toMatchObject({ by: 'sam', counted: true });
  });

  it('passes on a second approval by someone else', () => {
    const s = drive(toDeployGate(policies), () => ev.decide('deploy', 'approve', 'sam'), () => ev.decide('deploy', 'approve', 'bob'));
    expect(s.value).toBe('deploying');
  });

  it('passes on an approval by someone else alone', () => {
    expect(step(toDeployGate(policies), ev.decide('deploy', 'approve', 'bob')).next.value).toBe('deploying');
  });

  it('answers the submitter with what the gate still needs', () => {
    let record = applyAll(undefined, submit(policies));
    record = applyAll(
      record,
      { type: 'plan.proposed', ...envelope(at(1)), jobId: `${TASK}:plan:1`, usage: noUsage, plan },
      { type: 'gate.decide', ...envelope(at(1)), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' },
      { type: 'code.committed', ...envelope(at(2)), jobId: `${TASK}:implement:1`, usage: noUsage, branch: 'b', commit: 'c1', summary: 's', attempts: 1 },
      { type: 'review.approved', ...envelope(at(3)), jobId: `${TASK}:review:1`, usage: noUsage, verdict: { decision: 'approve', summary: 'ok', comments: [] }, testsPassed: true },
    );
    const outcome = applyMessage(record, { type: 'gate.decide', ...envelope(at(4)), gate: 'deploy', decision: 'approve', by: 'sam', via: 'cli' });
    expect(auditOf(outcome)).toMatchObject({
      state: 'awaitingDeployApproval',
      accepted: true,
      note: 'sam submitted the task and cannot be its only approver (separation of duties): an approval by someone else is needed',
      gate: { gate: 'deploy', visit: 1, approvals: 1, required: 1, approvers: ['sam', 'bob'], escalated: false },
    });
  });
});

describe('quorum with mixed principals', () => {
  const policies = policiesWith({
    deploy: manual({ approvers: ['github-team:acme/release', 'slack-group:S1', 'github-permission:admin', 'alice'], required: 2 }),
  });

  it('counts a GitHub team member and a Slack group member, as the channels vouch for them', () => {
    const s = drive(
      toDeployGate(policies),
      () => ev.decide('deploy', 'approve', 'octocat', { via: 'github', principal: { teams: ['acme/release'], permission: 'write' } }),
      () => ev.decide('deploy', 'approve', 'U7', { via: 'slack', principal: { groups: ['S1'] } }),
    );
    expect(s.value).toBe('deploying');
    expect(s.context.decisions.filter((d) => d.gate === 'deploy').map((d) => d.principal)).toEqual([
      { teams: ['acme/release'], permission: 'write' },
      { groups: ['S1'] },
    ]);
  });

  it('refuses a Slack user outside the group and a GitHub user below the permission', () => {
    const gate = toDeployGate(policies);
    const slack = step(gate, ev.decide('deploy', 'approve', 'U8', { via: 'slack', principal: { groups: ['S2'] } })).next;
    expect(slack.context.decisions.at(-1)).toMatchObject({ counted: false, note: 'U8 is not an approver for the deploy gate' });
    const github = step(gate, ev.decide('deploy', 'approve', 'dev', { via: 'github', principal: { permission: 'maintain' } })).next;
    expect(github.context.decisions.at(-1)).toMatchObject({ counted: false });
  });

  it('counts one person once, whichever channel they use', () => {
    const s = drive(toDeployGate(policies), () => ev.decide('deploy', 'approve', 'alice', { via: 'cli' }));
    const { next } = step(s, ev.decide('deploy', 'approve', 'alice', { via: 'api' }));
    expect(next.value).toBe('awaitingDeployApproval');
    expect(next.context.decisions.at(-1)).toMatchObject({ counted: false, note: 'alice has already approved this gate' });
  });

  it('does not let a bare name decide through a channel it does not name', () => {
    const { next } = step(toDeployGate(policies), ev.decide('deploy', 'approve', 'alice', { via: 'slack' }));
    expect(next.context.decisions.at(-1)).toMatchObject({ counted: false });
  });
});

const withTimeout = (timeout: GatePolicy['timeout'], over: Partial<GatePolicy> = {}) => manual({ timeout, ...over });

describe('gate timers', () => {
  const remindAndReject = withTimeout({ remindAfterMs: 30 * MIN, expireAfterMs: 60 * MIN, onExpire: 'reject' });

  it('arms the timers from the time of the event that brought the task to the gate', () => {
    const s = drive(start(policiesWith({ plan: remindAndReject })), (x) => ev.planProposed(x, at(1)));
    expect(s.context.gateVisit).toEqual({
      gate: 'plan', visit: 1, openedAt: at(1), escalatedAt: null,
      timers: [{ kind: 'remind', fireAt: at(31), firedAt: null }, { kind: 'expire', fireAt: at(61), firedAt: null }],
    });
  });

  it('records a reminder and stays; the same reminder again changes nothing', () => {
    const gate = drive(start(policiesWith({ plan: remindAndReject })), (x) => ev.planProposed(x, at(1)));
    const { next, actions } = step(gate, ev.timer('plan', 1, 'remind', at(31)));
    expect(next.value).toBe('awaitingPlanApproval');
    expect(actions).toEqual([]);
    expect(next.context.gateVisit?.timers[0]).toEqual({ kind: 'remind', fireAt: at(31), firedAt: at(31) });
    expect(step(next, ev.timer('plan', 1, 'remind', at(32))).next).toBe(next);
  });

  it('ignores a timer event that arrives before the timer is due', () => {
    const gate = drive(start(policiesWith({ plan: remindAndReject })), (x) => ev.planProposed(x, at(1)));
    expect(step(gate, ev.timer('plan', 1, 'remind', at(30))).next).toBe(gate);
  });

  it('ignores a timer of an earlier visit to the gate', () => {
    const second = drive(
      start(policiesWith({ plan: remindAndReject })),
      (x) => ev.planProposed(x, at(1)),
      () => ev.decide('plan', 'reject', 'bob', { sentAt: at(2) }),
      (x) => ev.planProposed(x, at(3)),
    );
    expect(second.context.gateVisit?.visit).toBe(2);
    expect(step(second, ev.timer('plan', 1, 'expire', at(62))).next).toBe(second);
    expect(step(second, ev.timer('plan', 2, 'expire', at(63))).next.value).toBe('planning');
  });

  it('ignores a timer for a gate that has no timeout', () => {
    const gate = drive(start(policiesWith()), (x) => ev.planProposed(x));
    expect(step(gate, ev.timer('plan', 1, 'expire', at(999))).next).toBe(gate);
  });

  it('on expiry with reject, rejects the plan as the policy and plans again with the reason', () => {
    const gate = drive(start(policiesWith({ plan: remindAndReject })), (x) => ev.planProposed(x, at(1)));
    const { next, actions } = step(gate, ev.timer('plan', 1, 'expire', at(61)));
    expect(next.value).toBe('planning');
    expect(actions).toEqual([{ type: 'dispatchJob', params: { stage: 'plan' } }]);
    expect(next.context.decisions.at(-1)).toEqual({
      gate: 'plan', visit: 1, decision: 'reject', by: 'policy:timeout', via: 'policy', comment: 'no decision within 60 min', at: at(61), counted: true,
    });
    expect(next.context.planFeedback.at(-1)).toContain('The plan gate timed out');
  });

  it('on expiry with reject at the deploy gate, sends the work back to the coder', () => {
    const gate = toDeployGate(policiesWith({ deploy: remindAndReject }));
    const { next } = step(gate, ev.timer('deploy', 1, 'expire', at(63)));
    expect(next.value).toBe('implementing');
    expect(next.context.implementFeedback.at(-1)).toContain('The deploy gate timed out');
  });

  it('on expiry with reject at the command gate, resumes the coder without the command', () => {
    const policies = policiesWith({ command: withTimeout({ expireAfterMs: 10 * MIN, onExpire: 'reject' }) });
    const gate = drive(toImplementing(policies), (x) => ev.commandRequested(x, at(2)));
    const { next } = step(gate, ev.timer('command', 1, 'expire', at(12)));
    expect(next.value).toBe('implementing');
    expect(next.context.approvedCommands).toEqual([]);
    expect(next.context.pendingCommand).toBeNull();
    expect(next.context.implementFeedback.at(-1)).toContain('did not approve running `npm install left-pad` (nobody decided within 10 min)');
  });

  it('on expiry with cancel, cancels the task saying why', () => {
    const gate = toDeployGate(policiesWith({ deploy: withTimeout({ expireAfterMs: 60 * MIN, onExpire: 'cancel' }) }));
    const { next, actions } = step(gate, ev.timer('deploy', 1, 'expire', at(63)));
    expect(next.value).toBe('cancelled');
    expect(actions).toEqual([]);
    expect(next.context.error).toEqual({ stage: 'deploy', reason: 'cancelled: the deploy gate timed out with no decision within 60 min' });
  });

  describe('escalation', () => {
    const escalating = withTimeout(
      { remindAfterMs: 30 * MIN, expireAfterMs: 60 * MIN, onExpire: 'escalate', escalateTo: { approvers: ['carol', 'dave'], required: 1 } },
      { approvers: ['alice', 'bob'], required: 2 },
    );
    const atGate = () => toDeployGate(policiesWith({ deploy: escalating }));

    it('hands the gate to the escalation group, once', () => {
      const { next, actions } = step(atGate(), ev.timer('deploy', 1, 'expire', at(63)));
      expect(next.value).toBe('awaitingDeployApproval');
      expect(actions).toEqual([]);
      expect(next.context.gateVisit?.escalatedAt).toBe(at(63));
      expect(step(next, ev.timer('deploy', 1, 'expire', at(64))).next).toBe(next);
    });

    it('refuses the first group after the escalation and passes on the escalation group', () => {
      const escalated = drive(atGate(), () => ev.timer('deploy', 1, 'expire', at(63)));
      const refused = step(escalated, ev.decide('deploy', 'approve', 'alice')).next;
      expect(refused.context.decisions.at(-1)).toMatchObject({
        counted: false, note: 'alice is not an approver for the deploy gate (escalated: the escalation group decides)',
      });
      expect(step(refused, ev.decide('deploy', 'approve', 'carol')).next.value).toBe('deploying');
    });

    it('passes at once when approvals already given satisfy the escalation group', () => {
      const policies = policiesWith({
        deploy: withTimeout(
          { expireAfterMs: 60 * MIN, onExpire: 'escalate', escalateTo: { approvers: ['alice', 'carol'], required: 1 } },
          { approvers: ['alice', 'bob'], required: 2 },
        ),
      });
      const half = drive(toDeployGate(policies), () => ev.decide('deploy', 'approve', 'alice'));
      const { next, actions } = step(half, ev.timer('deploy', 1, 'expire', at(63)));
      expect(next.value).toBe('deploying');
      expect(actions).toEqual([{ type: 'dispatchJob', params: { stage: 'deploy' } }]);
    });
  });
});

describe('gate timer effects of the pure step', () => {
  const policies = policiesWith({ plan: withTimeout({ remindAfterMs: 30 * MIN, expireAfterMs: 60 * MIN, onExpire: 'reject' }) });
  const planProposed = (): InboxMessage => ({ type: 'plan.proposed', ...envelope(at(1)), jobId: `${TASK}:plan:1`, usage: noUsage, plan });
  const timer = (kind: GateTimerKind, fireAt: string) => ({ taskId: TASK, gate: 'plan', visit: 1, kind, fireAt });

  it('sets the timers when the task reaches the gate', () => {
    const outcome = applyMessage(applyAll(undefined, submit(policies)), planProposed());
    expect(timerEffects(outcome)).toEqual([
      { kind: 'timer.set', key: `${TASK}.plan.1.remind`, msgId: `${TASK}.plan.1.remind:set`, payload: timer('remind', at(31)) },
      { kind: 'timer.set', key: `${TASK}.plan.1.expire`, msgId: `${TASK}.plan.1.expire:set`, payload: timer('expire', at(61)) },
    ]);
  });

  it('clears the timers still pending when the gate is decided', () => {
    const gate = applyAll(undefined, submit(policies), planProposed());
    const outcome = applyMessage(gate, { type: 'gate.decide', ...envelope(at(2)), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' });
    expect(timerEffects(outcome).map((e) => [e.kind, e.key])).toEqual([
      ['timer.clear', `${TASK}.plan.1.remind`],
      ['timer.clear', `${TASK}.plan.1.expire`],
    ]);
  });

  it('does not clear the timer that fired (its scheduler deletes it), only the others', () => {
    const gate = applyAll(undefined, submit(policies), planProposed());
    const reminded = applyMessage(gate, { type: 'gate.timer_fired', ...envelope(at(31)), gate: 'plan', visit: 1, kind: 'remind', fireAt: at(31) });
    expect(timerEffects(reminded)).toEqual([]);
    expect(auditOf(reminded)).toMatchObject({ accepted: true, gate: { timers: [{ kind: 'remind', firedAt: at(31) }, { kind: 'expire', firedAt: null }] } });
  });

  it('answers a stale timer with an audit entry saying so, and nothing else', () => {
    const gate = applyAll(undefined, submit(policies), planProposed());
    const approved = applyAll(gate, { type: 'gate.decide', ...envelope(at(2)), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' });
    const outcome = applyMessage(approved, { type: 'gate.timer_fired', ...envelope(at(61)), gate: 'plan', visit: 1, kind: 'expire', fireAt: at(61) });
    expect(outcome.kind).toBe('effects-only');
    expect(auditOf(outcome)).toMatchObject({ accepted: false, note: 'stale plan gate visit 1 expire timer: the task is implementing' });
  });

  it('sets no timers at a gate that passes on arrival', () => {
    const auto = policiesWith({ plan: withTimeout({ expireAfterMs: MIN, onExpire: 'reject' }, { autoApprove: true }) });
    expect(timerEffects(applyMessage(applyAll(undefined, submit(auto)), planProposed()))).toEqual([]);
  });
});

function applyAll(record: TaskRecord | undefined, ...messages: InboxMessage[]): TaskRecord {
  let current = record;
  for (const message of messages) {
    const outcome = applyMessage(current, message);
    if (outcome.kind !== 'commit') throw new Error(`${message.type} did not commit: ${JSON.stringify(outcome)}`);
    current = outcome.record;
  }
  if (current === undefined) throw new Error('nothing applied');
  return current;
}

type Outcome = ReturnType<typeof applyMessage>;

function timerEffects(outcome: Outcome) {
  if (outcome.kind === 'unknown-task') throw new Error('unknown task');
  return outcome.effects.filter((e) => e.kind === 'timer.set' || e.kind === 'timer.clear');
}

function auditOf(outcome: Outcome): unknown {
  if (outcome.kind === 'unknown-task') throw new Error('unknown task');
  return outcome.effects.find((e) => e.kind === 'publish' && e.subject.endsWith('.event'))?.payload;
}
