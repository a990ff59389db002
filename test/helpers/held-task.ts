/**
 * A task held at the deploy gate by a high-severity security finding that survived the coder's
 * round, built by the orchestrator's own pure step: for tests of how the hold reads.
 */
import type { InboxMessage, Plan, SecurityFinding, TaskSubmit, Usage } from '../../core/bus/messages.js';
import type { TaskRecord } from '../../core/task-record.js';
import { applyMessage } from '../../orchestrator/apply-message.js';

export const HELD_TASK = 't-held';
const T0 = '2025-03-01T10:00:00.000Z';
const at = (n: number) => new Date(Date.parse(T0) + n * 1000).toISOString();
const usage: Usage = { calls: 1, inputTokens: 10, cachedTokens: 0, outputTokens: 1, reasoningTokens: 0 };
const plan: Plan = { summary: 'search by name', steps: [{ title: 'write find()', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] };

export const sqlInjection: SecurityFinding = {
  severity: 'high', category: 'injection', file: 'src/db.js', line: 2,
  description: 'The name is concatenated into SQL <b>unescaped</b>.', suggestedFix: 'Pass it as a parameter.', source: 'model',
};
export const workflowChange: SecurityFinding = {
  severity: 'medium', category: 'ci-workflow', file: '.github/workflows/ci.yml', line: null,
  description: 'Changes a CI workflow.', suggestedFix: 'Revert it.', source: 'check',
};

export function taskHeldBySecurityFindings(submit: Partial<TaskSubmit> = {}): TaskRecord {
  const policy = { approvers: ['bob'], required: 1, autoApprove: true };
  const start: TaskSubmit = {
    type: 'task.submit', taskId: HELD_TASK, msgId: 'm-submit', sentAt: T0,
    spec: { repo: '/tmp/repo', title: 'Search by name', body: '', base: 'main', submittedBy: 'alice' },
    policies: { plan: { ...policy, autoApprove: false }, review: policy, deploy: policy, security: { approvers: ['slack-group:S0SEC', 'carol'], required: 1, protectedPaths: [] } },
    maxReviewRounds: 2,
    ...submit,
  };
  const common = (n: number) => ({ taskId: HELD_TASK, msgId: `m-${n}`, sentAt: at(n), usage });
  const committed = (n: number, round: number): InboxMessage => ({
    type: 'code.committed', ...common(n), jobId: `${HELD_TASK}:implement:${round}`, branch: `stagegate/${HELD_TASK}`, commit: `c${round}`, summary: 'added find()', attempts: 1,
  });
  const reviewed = (n: number, round: number): InboxMessage => ({
    type: 'review.approved', ...common(n), jobId: `${HELD_TASK}:review:${round}`, testsPassed: true,
    changedFiles: ['src/db.js', '.github/workflows/ci.yml'], linesChanged: 12,
    verdict: { decision: 'approve', summary: 'does the task', comments: [], risk: 'low' },
    security: { summary: 'SQL built from input', findings: [workflowChange, sqlInjection] },
  });
  const messages: InboxMessage[] = [
    start,
    { type: 'plan.proposed', ...common(1), jobId: `${HELD_TASK}:plan:1`, plan },
    { type: 'gate.decide', taskId: HELD_TASK, msgId: 'm-2', sentAt: at(2), gate: 'plan', decision: 'approve', by: 'bob', via: 'cli' },
    committed(3, 1),
    reviewed(4, 1),
    committed(5, 2),
    reviewed(6, 2),
  ];
  let record: TaskRecord | undefined;
  for (const message of messages) {
    const outcome = applyMessage(record, message);
    if (outcome.kind !== 'commit') throw new Error(`${message.type} did not commit: ${JSON.stringify(outcome)}`);
    record = outcome.record;
  }
  if (record?.state !== 'awaitingDeployApproval') throw new Error(`expected the deploy gate, got ${record?.state}`);
  return record;
}
