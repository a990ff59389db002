/**
 * How a task reads in its GitHub status comment, from records built by the orchestrator's own
 * pure step: the plan as a checklist, the gate and the commands that pass it, review rounds,
 * the pull request slot, the deploy, tokens, and what failed with how to retry.
 */
import { describe, expect, it } from 'vitest';
import type { InboxMessage, Plan, TaskSubmit, Usage } from '../../core/bus/messages.js';
import type { TaskRecord } from '../../core/task-record.js';
import { applyMessage } from '../../orchestrator/apply-message.js';
import { STATE_LABELS, renderStatusComment, renderStatusReply, statusMarker } from '../../orchestrator/github/status-comment.js';
import { taskHeldBySecurityFindings } from '../helpers/held-task.js';

const TASK = 't-status';
const T0 = '2025-03-01T10:00:00.000Z';
const at = (n: number) => new Date(Date.parse(T0) + n * 1000).toISOString();
const usage: Usage = { calls: 1, inputTokens: 100, cachedTokens: 20, outputTokens: 10, reasoningTokens: 0 };
const plan: Plan = {
  summary: 'Add the route, ping @alice <!-- sneaky -->',
  steps: [{ title: 'Write the route', detail: 'GET /health' }, { title: 'Test it', detail: '' }],
  filesToTouch: ['src/app.js'],
  risks: [],
  acceptanceChecks: [],
};
const manual = { approvers: ['github-permission:write'], required: 1, autoApprove: false };
const submit: TaskSubmit = {
  type: 'task.submit',
  taskId: TASK,
  msgId: 'm-submit',
  sentAt: T0,
  spec: {
    repo: 'https://github.com/acme/app.git',
    title: 'Add a health endpoint',
    body: '',
    base: 'main',
    submittedBy: 'github:octocat',
    branch: 'stagegate/12-add-a-health-endpoint',
    source: { kind: 'github', owner: 'acme', repo: 'app', issueNumber: 12 },
  },
  policies: { plan: manual, review: manual, deploy: manual },
  maxReviewRounds: 2,
};
const common = (n: number) => ({ taskId: TASK, msgId: `m-${n}`, sentAt: at(n), usage });
const proposed: InboxMessage = { type: 'plan.proposed', ...common(1), jobId: `${TASK}:plan:1`, plan };
const approved: InboxMessage = { type: 'gate.decide', taskId: TASK, msgId: 'm-2', sentAt: at(2), gate: 'plan', decision: 'approve', by: 'github:octocat', via: 'github', principal: { permission: 'write' } };
const committed: InboxMessage = { type: 'code.committed', ...common(3), jobId: `${TASK}:implement:1`, branch: 'stagegate/12-add-a-health-endpoint', commit: 'c1', summary: 'Added it', attempts: 1 };
const changes: InboxMessage = {
  type: 'review.changes_requested',
  ...common(4),
  jobId: `${TASK}:review:1`,
  testsPassed: false,
  verdict: { decision: 'request_changes', summary: 'Tests fail', comments: [{ file: 'src/app.js', line: 3, body: 'off by one' }] },
};

function applyAll(...messages: InboxMessage[]): TaskRecord {
  let record: TaskRecord | undefined;
  for (const message of messages) {
    const outcome = applyMessage(record, message);
    if (outcome.kind !== 'commit') throw new Error(`${message.type} did not commit: ${JSON.stringify(outcome)}`);
    record = outcome.record;
  }
  return record as TaskRecord;
}

const render = (record: TaskRecord, pullRequest?: { number: number; url: string }) =>
  renderStatusComment({ record, commandPermission: 'write', ...(pullRequest === undefined ? {} : { pullRequest }) });

describe('GitHub status comment', () => {
  it('starts with the hidden marker naming the task, and shows the title, state and branch', () => {
    const body = render(applyAll(submit));
    expect(body.split('\n')[0]).toBe(statusMarker(TASK));
    expect(body).toContain('### Stagegate: Add a health endpoint');
    expect(body).toContain('**📝 Planning** · task `t-status` · branch `stagegate/12-add-a-health-endpoint` · base `main`');
    expect(body).toContain('**Pull request:** not opened yet');
  });

  it('shows the plan as an unchecked checklist and the commands that pass the plan gate', () => {
    const body = render(applyAll(submit, proposed));
    expect(body).toContain('- [ ] Write the route — GET /health\n- [ ] Test it');
    expect(body).toContain('**Waiting at the plan gate**: 0 of 1 approval; approvers `github-permission:write`');
    expect(body).toContain('- `/approve` approves the plan; the coder starts');
    expect(body).toContain('- `/reject <reason>` sends the plan back to the planner with your reason');
  });

  it('keeps model text from pinging people or closing the marker', () => {
    const body = render(applyAll(submit, proposed));
    expect(body).toContain('> Add the route, ping @\u200balice  sneaky');
    expect(body.match(/<!--/g)).toHaveLength(1);
  });

  it('checks the plan off once the code is committed, and lists review rounds with the latest verdict', () => {
    const body = render(applyAll(submit, proposed, approved, committed, changes));
    expect(body).toContain('- [x] Write the route — GET /health\n- [x] Test it');
    expect(body).toContain('- Round 1: changes requested');
    expect(body).toContain('- Latest verdict: changes requested — Tests fail (1 comment)');
    expect(body).toContain('- plan gate: approved by github:octocat via github');
    expect(body).toContain('**Tokens:** 330 (300 in, 60 of them cached, 30 out) over 3 model calls');
  });

  it('shows the pull request once one is linked', () => {
    const body = render(applyAll(submit), { number: 34, url: 'https://github.com/acme/app/pull/34' });
    expect(body).toContain('**Pull request:** #34 (https://github.com/acme/app/pull/34)');
  });

  it('says what failed and how to retry', () => {
    const failed = applyAll(submit, { type: 'job.failed', ...common(1), jobId: `${TASK}:plan:1`, stage: 'plan', reason: 'the model timed out' });
    expect(failed.state).toBe('failed');
    const body = render(failed);
    expect(body).toContain('**The plan stage failed:** the model timed out');
    expect(body).toContain('Comment `/retry` to run the plan stage again');
    expect(renderStatusReply(failed)).toContain('Failed at the plan stage: the model timed out; `/retry` runs it again');
  });

  it('gives every state one stagegate: label, all gates sharing awaiting-approval', () => {
    expect(new Set(Object.values(STATE_LABELS))).toEqual(
      new Set(['stagegate:planning', 'stagegate:awaiting-approval', 'stagegate:implementing', 'stagegate:reviewing', 'stagegate:checks', 'stagegate:deploying', 'stagegate:done', 'stagegate:failed', 'stagegate:cancelled']),
    );
  });
});

describe('status comment: the security review', () => {
  it('shows the findings, and how the security group passes a deploy gate they hold', () => {
    const body = render(taskHeldBySecurityFindings());
    expect(body).toContain('- Security review: 2 findings (1 high, 1 medium) — SQL built from input');
    expect(body).toContain('  - `high injection src/db.js:2` The name is concatenated into SQL <b>unescaped</b>.');
    expect(body).not.toContain('`medium ci-workflow');
    expect(body).toContain("**Waiting at the deploy gate**: 0 of 1 approval; approvers `slack-group:S0SEC`, `carol`");
    expect(body).toContain('Held by high-severity security findings: `/approve <reason>` from the security group overrides them; the reason is recorded.');
    expect(body).toContain('Not auto-approved: high-severity security findings: only slack-group:S0SEC, carol can pass this gate');
  });

  it('says nothing of a security review the reviewer did not make', () => {
    expect(render(applyAll(submit, proposed, approved, committed, changes))).not.toContain('Security review');
  });
});

describe('status comment: approvals pinned to the head', () => {
  const A = 'a1'.repeat(20);
  const B = 'b2'.repeat(20);
  const twoToDeploy: TaskSubmit = { ...submit, policies: { ...submit.policies, deploy: { ...manual, required: 2 } } };
  const atGate = [
    twoToDeploy,
    proposed,
    approved,
    { ...committed, commit: A },
    { type: 'review.approved', ...common(4), jobId: `${TASK}:review:1`, testsPassed: true, verdict: { decision: 'approve', summary: 'fine', comments: [] } },
  ] satisfies InboxMessage[];
  const deployApproval: InboxMessage = { type: 'gate.decide', taskId: TASK, msgId: 'm-5', sentAt: at(5), gate: 'deploy', decision: 'approve', by: 'github:mona', via: 'github', principal: { permission: 'write' } };
  const push: InboxMessage = { type: 'branch.moved', taskId: TASK, msgId: 'm-6', sentAt: at(6), branch: 'stagegate/12-add-a-health-endpoint', sha: B, by: 'github:wendy' };

  it('names the head approvals count for, and how to name it in /approve', () => {
    const body = render(applyAll(...atGate, deployApproval));
    expect(body).toContain('**Waiting at the deploy gate**: 1 of 2 approvals');
    expect(body).toContain('Approvals count for `a1a1a1a`, the head of `stagegate/12-add-a-health-endpoint`, only: a push to the branch makes them stale.');
    expect(body).toContain('- `/approve` approves the deploy of `a1a1a1a`, the head of the branch; `/approve a1a1a1a` names it');
    expect(body).not.toContain('is stale');
  });

  it('says which approval a push made stale, and counts it no more', () => {
    const body = render(applyAll(...atGate, deployApproval, push));
    expect(body).toContain('**Waiting at the deploy gate**: 0 of 2 approvals');
    expect(body).toContain('- approval by @mona for a1a1a1a is stale: the branch moved to b2b2b2b');
    expect(body).toContain('Approvals count for `b2b2b2b`');
  });
});

describe('status comment: updates from the base and commits by people', () => {
  const H1 = 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1';
  const BASE = 'b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0';
  const reviewedAt = (commit: string): InboxMessage[] => [
    proposed,
    approved,
    { type: 'code.committed', ...common(3), jobId: `${TASK}:implement:1`, branch: 'stagegate/12-add-a-health-endpoint', commit, summary: 'Added it', attempts: 1 },
    { type: 'review.approved', ...common(4), jobId: `${TASK}:review:1`, testsPassed: true, verdict: { decision: 'approve', summary: 'ok', comments: [] } },
  ];
  const conflict: InboxMessage = { type: 'base.moved', taskId: TASK, msgId: 'm-5', sentAt: at(5), head: H1, baseSha: BASE, mergeableState: 'dirty' };

  it('says the branch is being updated from the base while the coder merges it, and not once it is done', () => {
    const updating = applyAll(submit, ...reviewedAt(H1), conflict);
    expect(updating.state).toBe('implementing');
    expect(render(updating)).toContain('**Update:** main moved on and the pull request conflicts with it; the coder merges main into the branch (nothing on the branch is rewritten), then the result is reviewed again.');
    const merged = applyAll(submit, ...reviewedAt(H1), conflict, {
      type: 'code.committed',
      ...common(6),
      jobId: `${TASK}:implement:2`,
      branch: 'stagegate/12-add-a-health-endpoint',
      commit: 'c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2',
      summary: 'merged main',
      attempts: 1,
      foreignCommits: [
        { sha: 'd1d1d1d1d1d1d1d1', author: 'Alice <alice@example.com>', subject: 'Fix a typo' },
        { sha: 'd2d2d2d2d2d2d2d2', author: 'Alice <alice@example.com>', subject: 'And another' },
      ],
    });
    const body = render(merged);
    expect(body).not.toContain('**Update:**');
    expect(body).toContain('**Commits by people:** Alice pushed 2 commits (`d1d1d1d` Fix a typo, `d2d2d2d` And another); they are kept (never overwritten) and go into the next review.');
  });
});
