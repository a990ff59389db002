/**
 * How gates read in Slack, from records built by the orchestrator's own pure step: the content
 * of each gate, escaping of text that came from people or models, who decided, and the buttons.
 */
import { describe, expect, it } from 'vitest';
import type { InboxMessage, Plan, TaskSubmit, Usage } from '../../core/bus/messages.js';
import type { TaskRecord } from '../../core/task-record.js';
import { applyMessage } from '../../orchestrator/apply-message.js';
import { closedGateMessage, gateContent, openGateMessage, outcomeLine, renderPrincipal } from '../../orchestrator/channels/slack/gate-message.js';
import { decidersAt } from '../../orchestrator/channels/slack/reconcile.js';
import { HELD_TASK, taskHeldBySecurityFindings } from '../helpers/held-task.js';

const TASK = 't-slack';
const T0 = '2025-03-01T10:00:00.000Z';
const at = (n: number) => new Date(Date.parse(T0) + n * 1000).toISOString();
const usage: Usage = { calls: 1, inputTokens: 10, cachedTokens: 0, outputTokens: 1, reasoningTokens: 0 };
const plan: Plan = {
  summary: 'Add <b>bold</b> & more',
  steps: [{ title: 'Write the route', detail: 'GET /health' }, { title: 'Test it', detail: '' }],
  filesToTouch: ['src/app.js'],
  risks: ['none known'],
  acceptanceChecks: [],
};
const manual = { approvers: ['slack:U0ALICE', 'bob'], required: 1, autoApprove: false };
const submit: TaskSubmit = {
  type: 'task.submit',
  taskId: TASK,
  msgId: 'm-submit',
  sentAt: T0,
  spec: { repo: '/tmp/repo', title: 'Health <endpoint>', body: '', base: 'main', submittedBy: 'alice' },
  policies: { plan: manual, review: manual, deploy: manual },
  maxReviewRounds: 0,
};

function applyAll(...messages: InboxMessage[]): TaskRecord {
  return applyTo(undefined, ...messages);
}

function applyTo(start: TaskRecord | undefined, ...messages: InboxMessage[]): TaskRecord {
  let record = start;
  for (const message of messages) {
    const outcome = applyMessage(record, message);
    if (outcome.kind !== 'commit') throw new Error(`${message.type} did not commit: ${JSON.stringify(outcome)}`);
    record = outcome.record;
  }
  return record as TaskRecord;
}

const common = (n: number) => ({ taskId: TASK, msgId: `m-${n}`, sentAt: at(n), usage });
const atPlanGate = () => applyAll(submit, { type: 'plan.proposed', ...common(1), jobId: `${TASK}:plan:1`, plan });
const approvePlan = { type: 'gate.decide', taskId: TASK, msgId: 'm-2', sentAt: at(2), gate: 'plan', decision: 'approve', by: 'slack:U0ALICE', via: 'slack' } as const;
const atReviewGate = () =>
  applyAll(
    submit,
    { type: 'plan.proposed', ...common(1), jobId: `${TASK}:plan:1`, plan },
    approvePlan,
    { type: 'code.committed', ...common(3), jobId: `${TASK}:implement:1`, branch: `stagegate/${TASK}`, commit: 'abcdef0123456789', summary: 'Added the route', attempts: 1 },
    {
      type: 'review.changes_requested',
      ...common(4),
      jobId: `${TASK}:review:1`,
      testsPassed: false,
      verdict: { decision: 'request_changes', summary: 'Tests fail', comments: [{ file: 'src/app.js', line: 3, body: 'off by one' }] },
    },
  );

describe('Slack gate messages', () => {
  it('shows the plan, escaped, with its steps and files at the plan gate', () => {
    const content = gateContent(atPlanGate(), 'plan');
    expect(content).toBe(
      [
        '*Plan:* Add &lt;b&gt;bold&lt;/b&gt; &amp; more',
        '1. Write the route — GET /health',
        '2. Test it',
        '*Files:* `src/app.js`',
        '*Risks:* none known',
      ].join('\n'),
    );
  });

  it("shows the change and the reviewer's verdict at the review gate", () => {
    const record = atReviewGate();
    expect(record.state).toBe('awaitingReviewApproval');
    const content = gateContent(record, 'review');
    expect(content).toContain('*Change:* Added the route');
    expect(content).toContain('*Commit:* `abcdef012345` on `stagegate/t-slack`');
    expect(content).toContain("*Reviewer's verdict:* changes requested — Tests fail");
    expect(content).toContain('• `src/app.js:3` off by one');
  });

  it('carries the task, gate and visit on both buttons', () => {
    const message = openGateMessage(atPlanGate(), 'plan', 1, manual);
    const actions = message.blocks.find((b) => b.type === 'actions');
    expect(actions).toMatchObject({
      elements: [
        { action_id: 'stagegate_approve', value: JSON.stringify({ taskId: TASK, gate: 'plan', visit: 1 }) },
        { action_id: 'stagegate_reject', value: JSON.stringify({ taskId: TASK, gate: 'plan', visit: 1 }) },
      ],
    });
    expect(message.text).toBe('Task t-slack waits at the plan gate: Health &lt;endpoint&gt;');
  });

  it('carries the head on the deploy gate buttons, and names a push made after the review', () => {
    const head = 'abcdef0123456789';
    const approveReview = { type: 'gate.decide', taskId: TASK, msgId: 'm-5', sentAt: at(5), gate: 'review', decision: 'approve', by: 'bob', via: 'cli' } as const;
    const atDeployGate = applyTo(atReviewGate(), approveReview);
    expect(atDeployGate.state).toBe('awaitingDeployApproval');
    const buttons = (record: TaskRecord) => openGateMessage(record, 'deploy', 1, manual).blocks.find((b) => b.type === 'actions');
    expect(buttons(atDeployGate)).toMatchObject({ elements: [{ value: JSON.stringify({ taskId: TASK, gate: 'deploy', visit: 1, sha: head }) }, { value: JSON.stringify({ taskId: TASK, gate: 'deploy', visit: 1, sha: head }) }] });

    const pushed = 'fedcba9876543210fedcba9876543210fedcba98';
    const moved = applyTo(atDeployGate, { type: 'branch.moved', taskId: TASK, msgId: 'm-6', sentAt: at(6), branch: `stagegate/${TASK}`, sha: pushed });
    expect(buttons(moved)).toMatchObject({ elements: [{ value: JSON.stringify({ taskId: TASK, gate: 'deploy', visit: 1, sha: pushed }) }, {}] });
    expect(gateContent(moved, 'deploy')).toContain(`*Commit:* \`fedcba987654\` on \`stagegate/${TASK}\` (pushed after the review, which saw \`abcdef012345\`)`);
  });

  it('replaces the buttons with who decided and where once the visit is over', () => {
    const record = applyAll(submit, { type: 'plan.proposed', ...common(1), jobId: `${TASK}:plan:1`, plan }, approvePlan);
    const closed = closedGateMessage(record, 'plan', 1);
    expect(closed.blocks.some((b) => b.type === 'actions')).toBe(false);
    expect(outcomeLine(record, 'plan', 1)).toBe(':white_check_mark: Approved by <@U0ALICE> via slack');
  });

  it('says a rejection with its reason', () => {
    const record = applyAll(submit, { type: 'plan.proposed', ...common(1), jobId: `${TASK}:plan:1`, plan }, {
      ...approvePlan,
      decision: 'reject',
      by: 'bob',
      via: 'cli',
      comment: 'smaller <steps>',
    });
    expect(outcomeLine(record, 'plan', 1)).toBe(':x: Rejected by bob via cli: smaller &lt;steps&gt;');
  });

  it('says a cancel when the task was cancelled at the gate', () => {
    const record = applyAll(submit, { type: 'plan.proposed', ...common(1), jobId: `${TASK}:plan:1`, plan }, {
      type: 'task.cancel',
      taskId: TASK,
      msgId: 'm-cancel',
      sentAt: at(2),
      by: 'alice',
      reason: 'not needed',
    });
    expect(outcomeLine(record, 'plan', 1)).toBe(':no_entry_sign: cancelled by alice: not needed');
  });

  it('mentions Slack users and user groups, and writes other principals as text', () => {
    expect(['slack:U1', 'slack-group:S2', 'api:deploy-bot', 'a<b'].map(renderPrincipal)).toEqual(['<@U1>', '<!subteam^S2>', 'api:deploy-bot', 'a&lt;b']);
  });
});

describe('Slack gate message: the security review', () => {
  it('shows the findings, the hold and the security group at a deploy gate held by them', () => {
    const record = taskHeldBySecurityFindings();
    const visit = record.context.gateVisits.deploy;
    const message = openGateMessage(record, 'deploy', visit, decidersAt(record, 'deploy', visit));
    const content = gateContent(record, 'deploy');
    expect(content).toContain('*Security review:* 2 findings (1 high, 1 medium) — SQL built from input');
    expect(content).toContain('• `high injection src/db.js:2` The name is concatenated into SQL &lt;b&gt;unescaped&lt;/b&gt;.');
    // Only the serious ones are listed; the rest are counted.
    expect(content).not.toContain('ci-workflow');
    expect(content).toContain(':lock: *Held by high-severity security findings:* only the security group can approve, with a reason');
    expect(content).toContain('_Not auto-approved: high-severity security findings: only slack-group:S0SEC, carol can pass this gate_');
    expect(JSON.stringify(message.blocks)).toContain('Approvers: <!subteam^S0SEC>, carol');
  });

  it('no longer says the gate is held once it was passed', () => {
    const held = taskHeldBySecurityFindings();
    const outcome = applyMessage(held, {
      type: 'gate.decide', taskId: HELD_TASK, msgId: 'm-override', sentAt: at(9), gate: 'deploy', decision: 'approve', by: 'carol', via: 'cli', comment: 'accepted risk',
    });
    if (outcome.kind !== 'commit') throw new Error('the override did not commit');
    const closed = closedGateMessage(outcome.record, 'deploy', 1);
    expect(JSON.stringify(closed.blocks)).toContain('Approved by carol via cli: accepted risk');
    expect(JSON.stringify(closed.blocks)).not.toContain('Held by');
  });
});
