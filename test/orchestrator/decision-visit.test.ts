import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { GateDecide, Plan, TaskSubmit } from '../../core/bus/messages.js';
import { taskMachine, type TaskEvent } from '../../orchestrator/task-machine.js';

type Snapshot = SnapshotFrom<typeof taskMachine>;
const T = '2025-03-01T10:00:00.000Z';
const usage = { calls: 1, inputTokens: 1, cachedTokens: 0, outputTokens: 1, reasoningTokens: 0 };
const plan: Plan = { summary: 's', steps: [{ title: 'a', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] };
const gate = { approvers: ['alice', 'bob'], required: 1, autoApprove: false };
const submit: TaskSubmit = {
  type: 'task.submit', taskId: 't-1', msgId: 'm0', sentAt: T,
  spec: { repo: '/r', title: 't', body: '', base: 'main', submittedBy: 'carol' },
  policies: { plan: gate, review: gate, deploy: gate }, maxReviewRounds: 2,
};

const proposed = (s: Snapshot): TaskEvent => ({ type: 'plan.proposed', taskId: 't-1', msgId: `p-${s.context.attempts.plan}`, sentAt: T, jobId: s.context.currentJobId as string, usage, plan });
const decide = (decision: 'approve' | 'reject', by: string, visit: number): GateDecide => ({
  type: 'gate.decide', taskId: 't-1', msgId: `d-${by}-${visit}`, sentAt: T, gate: 'plan', decision, by, via: 'cli', visit, comment: 'why',
});

describe('decisions carry the gate visit they were made for', () => {
  it('does not count a decision for an earlier visit toward the gate when it opens again', () => {
    let [s] = initialTransition(taskMachine, submit);
    [s] = transition(taskMachine, s, proposed(s));
    [s] = transition(taskMachine, s, decide('reject', 'alice', 1));
    expect(s.value).toBe('planning');
    [s] = transition(taskMachine, s, proposed(s));
    expect(s.context.gateVisits.plan).toBe(2);

    // bob clicked Approve on the first visit's message; it arrives after the gate reopened.
    const [late] = transition(taskMachine, s, decide('approve', 'bob', 1));
    expect(late.value).toBe('awaitingPlanApproval');
    expect(late.context.decisions.at(-1)).toMatchObject({ by: 'bob', counted: false, note: expect.stringContaining('earlier visit') });

    const [current] = transition(taskMachine, late, decide('approve', 'bob', 2));
    expect(current.value).toBe('implementing');
  });
});

describe('refused decisions', () => {
  it('keeps only the latest twenty on the task, and every counted one', () => {
    let [s] = initialTransition(taskMachine, submit);
    [s] = transition(taskMachine, s, proposed(s));
    for (let i = 0; i < 50; i++) {
      [s] = transition(taskMachine, s, { ...decide('approve', 'mallory', 1), msgId: `spam-${i}`, comment: 'x'.repeat(5_000) });
    }
    [s] = transition(taskMachine, s, decide('approve', 'bob', 1));
    expect(s.value).toBe('implementing');
    const refused = s.context.decisions.filter((d) => !d.counted);
    expect(refused).toHaveLength(20);
    expect(refused.every((d) => (d.comment ?? '').length <= 2_000)).toBe(true);
    expect(s.context.decisions.filter((d) => d.counted).map((d) => d.by)).toEqual(['bob']);
  });
});
