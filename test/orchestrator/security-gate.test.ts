/**
 * The security review's hold on the gates, through the orchestrator's pure step (the chart, the
 * gate policy and the audit entry together): blocking findings go back to the coder once; if they
 * remain, the deploy gate counts only the security group's approval with a reason, records it as
 * an override, and never passes on its own; a change to CI workflows, deploy configuration or
 * Stagegate's configuration never passes a gate by auto-approval.
 */
import { describe, expect, it } from 'vitest';
import {
  ImplementRequest,
  TaskEventRecorded,
  type CodeCommitted,
  type GateDecide,
  type InboxMessage,
  type Plan,
  type ReviewApproved,
  type SecurityFinding,
  type TaskSubmit,
  type Usage,
} from '../../core/bus/messages.js';
import type { GatePolicies, GatePolicy } from '../../core/policy.js';
import type { Effect, TaskRecord } from '../../core/task-record.js';
import { applyMessage } from '../../orchestrator/apply-message.js';
import { gateStatusOf } from '../../orchestrator/gate-policy.js';

const TASK = 't-sec';
const T0 = '2025-03-01T10:00:00.000Z';
let clock = 0;
const next = () => new Date(Date.parse(T0) + ++clock * 1000).toISOString();

const usage: Usage = { calls: 1, inputTokens: 10, cachedTokens: 0, outputTokens: 5, reasoningTokens: 0 };
const plan: Plan = { summary: 's', steps: [{ title: 'step', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] };
const manual: GatePolicy = { approvers: ['alice', 'bob'], required: 1, autoApprove: false };
const security = { approvers: ['github-team:acme/security', 'carol'], required: 1, protectedPaths: ['ops/**'] };

const injection: SecurityFinding = {
  severity: 'high', category: 'injection', file: 'src/db.ts', line: 12,
  description: 'User input is concatenated into SQL.', suggestedFix: 'Use a parameterised query.', source: 'model',
};
const hint: SecurityFinding = { ...injection, severity: 'low', category: 'hardening', line: null, description: 'Consider a rate limit.' };

function submit(policies: Partial<GatePolicies> = {}): TaskSubmit {
  return {
    type: 'task.submit', taskId: TASK, msgId: 'submit', sentAt: T0,
    spec: { repo: '/tmp/repo', title: 'Search by name', body: '', base: 'main', submittedBy: 'alice' },
    policies: { plan: manual, review: manual, deploy: manual, security, ...policies },
    maxReviewRounds: 2,
  };
}

const envelope = (label: string) => ({ taskId: TASK, msgId: `${label}-${clock + 1}`, sentAt: next() });
const job = (r: TaskRecord) => {
  if (r.context.currentJobId === null) throw new Error(`no current job in ${r.state}`);
  return r.context.currentJobId;
};
const committedCode = (r: TaskRecord, changedFiles = ['src/db.ts']): CodeCommitted => ({
  type: 'code.committed', ...envelope('code'), jobId: job(r), usage, branch: 'stagegate/t-sec', commit: `c${clock}`, summary: 'done', attempts: 1,
  changedFiles, linesChanged: 10,
});
const reviewed = (r: TaskRecord, findings: SecurityFinding[], changedFiles = ['src/db.ts']): ReviewApproved => ({
  type: 'review.approved', ...envelope('review'), jobId: job(r), usage, testsPassed: true, changedFiles, linesChanged: 10,
  verdict: { decision: 'approve', summary: 'does the task', comments: [], risk: 'low' },
  security: { summary: findings.length === 0 ? 'nothing found' : 'SQL built from input', findings },
});
const decide = (gate: GateDecide['gate'], by: string, over: Partial<GateDecide> = {}): GateDecide => ({
  type: 'gate.decide', ...envelope(`decide-${by}`), gate, decision: 'approve', by, via: 'cli', ...over,
});

function apply(record: TaskRecord | undefined, message: InboxMessage): { record: TaskRecord; effects: Effect[] } {
  const outcome = applyMessage(record, message);
  if (outcome.kind === 'unknown-task') throw new Error('unknown task');
  if (outcome.kind === 'effects-only') {
    if (record === undefined) throw new Error(outcome.reason);
    return { record, effects: outcome.effects };
  }
  return { record: outcome.record, effects: outcome.effects };
}

const audit = (effects: Effect[]) => {
  const entry = effects.find((e) => e.kind === 'publish' && e.msgId.endsWith(':audit'));
  if (entry === undefined) throw new Error('no audit entry');
  return TaskEventRecorded.parse(entry.payload);
};

function toReview(policies: Partial<GatePolicies> = {}, changedFiles?: string[]): TaskRecord {
  let r = apply(undefined, submit(policies)).record;
  r = apply(r, { type: 'plan.proposed', ...envelope('plan'), jobId: job(r), usage, plan }).record;
  r = apply(r, decide('plan', 'alice')).record;
  return apply(r, committedCode(r, changedFiles)).record;
}

/** A high finding, one coder round, and the same finding again. */
function toBlockedDeployGate(policies: Partial<GatePolicies> = {}): TaskRecord {
  let r = toReview(policies);
  r = apply(r, reviewed(r, [injection, hint])).record;
  r = apply(r, committedCode(r)).record;
  return apply(r, reviewed(r, [injection])).record;
}

describe('security findings: one round with the coder', () => {
  it('sends high findings back to the coder once, as review comments with the fix, and says so in its feedback', () => {
    const r = toReview();
    const { record, effects } = apply(r, reviewed(r, [injection, hint]));
    expect(record.state).toBe('implementing');
    expect(record.context.security).toEqual({ findings: [injection, hint], summary: 'SQL built from input', fixRounds: 1 });
    expect(record.context.stages.at(-2)?.outcome).toBe('security findings');
    const dispatched = effects.find((e) => e.kind === 'publish' && e.msgId.endsWith(':dispatch'));
    const request = ImplementRequest.parse(dispatched?.payload);
    expect(request.reviewComments).toEqual([
      { file: 'src/db.ts', line: 12, body: 'Security (high, injection): User input is concatenated into SQL. Suggested fix: Use a parameterised query.' },
    ]);
    // Only the blocking finding is sent as work to do; the low one is not.
    expect(JSON.stringify(request.reviewComments)).not.toContain('rate limit');
    expect(request.feedback.at(-1)).toMatch(/security review found 1 high-severity issue/);
  });

  it('lets the deploy gate pass as usual when the round fixed them', () => {
    let r = toReview();
    r = apply(r, reviewed(r, [injection])).record;
    r = apply(r, committedCode(r)).record;
    r = apply(r, reviewed(r, [hint])).record;
    expect(r.state).toBe('awaitingDeployApproval');
    expect(gateStatusOf(r.state, r.context)).not.toHaveProperty('securityBlock');
    const { record } = apply(r, decide('deploy', 'bob'));
    expect(record.state).toBe('deploying');
    expect(record.context.decisions.at(-1)).not.toHaveProperty('securityOverride');
  });

  it('never gives medium or low findings a round of their own', () => {
    const r = toReview();
    const { record } = apply(r, reviewed(r, [{ ...injection, severity: 'medium' }, hint]));
    expect(record.state).toBe('awaitingDeployApproval');
    expect(record.context.security.fixRounds).toBe(0);
  });
});

describe('security findings that remain after the round: the deploy gate is held', () => {
  it('waits at the deploy gate with the security group as its approvers, whatever the deploy policy auto-approves', () => {
    const r = toBlockedDeployGate({ deploy: { ...manual, autoApprove: true } });
    expect(r.state).toBe('awaitingDeployApproval');
    expect(r.context.decisions.filter((d) => d.via === 'policy')).toEqual([]);
    const status = gateStatusOf(r.state, r.context);
    expect(status).toMatchObject({
      gate: 'deploy',
      approvers: ['github-team:acme/security', 'carol'],
      required: 1,
      securityBlock: { findings: 1 },
      autoApproveRefused: 'high-severity security findings: only github-team:acme/security, carol can pass this gate',
    });
    expect(status?.missing).toMatch(/^1 high-severity security finding: an override by github-team:acme\/security, carol, with a reason/);
  });

  it('refuses an approval by a deploy approver outside the security group, saying who can override', () => {
    const r = toBlockedDeployGate();
    const { record, effects } = apply(r, decide('deploy', 'bob', { comment: 'ship it' }));
    expect(record.state).toBe('awaitingDeployApproval');
    const note = 'high-severity security findings: only github-team:acme/security, carol can override, with a reason';
    expect(record.context.decisions.at(-1)).toMatchObject({ by: 'bob', counted: false, note });
    expect(audit(effects)).toMatchObject({ accepted: false, note });
    expect(audit(effects)).not.toHaveProperty('securityOverride');
  });

  it('refuses an approval by the security group without a reason', () => {
    const r = toBlockedDeployGate();
    for (const comment of [undefined, '   ']) {
      const { record } = apply(r, decide('deploy', 'carol', comment === undefined ? {} : { comment }));
      expect(record.state).toBe('awaitingDeployApproval');
      expect(record.context.decisions.at(-1)).toMatchObject({
        by: 'carol', counted: false, note: "high-severity security findings: an override needs a reason (the decision's comment)",
      });
    }
  });

  it('passes on an approval by the security group with a reason, recorded as an override on the task and in the audit log', () => {
    const r = toBlockedDeployGate();
    const reason = 'input is an enum checked upstream; tracked in SEC-12';
    const { record, effects } = apply(r, decide('deploy', 'Octo', { via: 'github', principal: { teams: ['acme/security'] }, comment: reason }));
    expect(record.state).toBe('deploying');
    expect(record.context.decisions.at(-1)).toMatchObject({ gate: 'deploy', by: 'Octo', via: 'github', comment: reason, counted: true, securityOverride: true });
    expect(audit(effects)).toMatchObject({ accepted: true, securityOverride: { by: 'Octo', reason, findings: [injection] } });
  });

  it('still lets a deploy approver send the work back to the coder', () => {
    const r = toBlockedDeployGate();
    const { record } = apply(r, decide('deploy', 'bob', { decision: 'reject', comment: 'fix the query' }));
    expect(record.state).toBe('implementing');
    expect(record.context.reviewComments.map((c) => c.body)).toContainEqual(expect.stringContaining('Security (high, injection)'));
  });

  it('holds the gate for the next review without another coder round: the round is spent', () => {
    let r = toBlockedDeployGate();
    r = apply(r, decide('deploy', 'bob', { decision: 'reject', comment: 'fix the query' })).record;
    r = apply(r, committedCode(r)).record;
    r = apply(r, reviewed(r, [injection])).record;
    expect(r.state).toBe('awaitingDeployApproval');
    expect(r.context.security.fixRounds).toBe(1);
    expect(gateStatusOf(r.state, r.context)?.securityBlock).toEqual({ findings: 1 });
  });

  it('lets nobody override when the task has no security group, and says so', () => {
    const r = toBlockedDeployGate({ security: undefined });
    const { record } = apply(r, decide('deploy', 'alice', { comment: 'ship it' }));
    expect(record.state).toBe('awaitingDeployApproval');
    expect(record.context.decisions.at(-1)?.note).toBe(
      'high-severity security findings: only the security group (gates.security.approvers, not configured) can override, with a reason',
    );
  });
});

describe('protected paths: never auto-approved', () => {
  const autoEverything: Partial<GatePolicies> = {
    review: { ...manual, autoApprove: true },
    deploy: { ...manual, autoApprove: [{ name: 'anything', when: { pathsMatch: ['**'] } }] },
  };

  it('holds a workflow change at the deploy gate even with autoApprove, showing why; a person can pass it', () => {
    const r = toReview(autoEverything, ['src/a.ts', '.github/workflows/ci.yml']);
    const { record, effects } = apply(r, reviewed(r, [], ['src/a.ts', '.github/workflows/ci.yml']));
    expect(record.state).toBe('awaitingDeployApproval');
    expect(audit(effects)).not.toHaveProperty('autoApproved');
    expect(gateStatusOf(record.state, record.context)?.autoApproveRefused).toBe(
      'never auto-approved: the change touches .github/workflows/ci.yml (CI workflow)',
    );
    expect(apply(record, decide('deploy', 'bob')).record.state).toBe('deploying');
  });

  it('holds it at the review gate too', () => {
    const r = toReview({ ...autoEverything, deploy: manual }, ['.github/stagegate.yml']);
    const changes = { type: 'review.changes_requested' as const, verdict: { decision: 'request_changes' as const, summary: 'no', comments: [] } };
    let rec = r;
    for (let round = 0; round < 3; round++) {
      rec = apply(rec, { ...reviewed(rec, [], ['.github/stagegate.yml']), ...changes }).record;
      if (rec.state === 'implementing') rec = apply(rec, committedCode(rec, ['.github/stagegate.yml'])).record;
    }
    expect(rec.state).toBe('awaitingReviewApproval');
    expect(gateStatusOf(rec.state, rec.context)?.autoApproveRefused).toBe(
      "never auto-approved: the change touches .github/stagegate.yml (Stagegate's configuration)",
    );
  });

  it("counts the task's own deploy paths as deploy configuration, and passes other changes on their own", () => {
    const touched = toReview(autoEverything, ['ops/deploy.sh']);
    expect(apply(touched, reviewed(touched, [], ['ops/deploy.sh'])).record.state).toBe('awaitingDeployApproval');
    const plain = toReview(autoEverything, ['src/a.ts']);
    expect(apply(plain, reviewed(plain, [], ['src/a.ts'])).record.state).toBe('deploying');
  });
});
