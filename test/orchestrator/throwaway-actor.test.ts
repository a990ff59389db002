/**
 * XState's pure `transition()` builds an actor without input on every call and computes its
 * initial snapshot. The charts answer that without throwing (a thrown and caught TypeError on
 * every step of every task and session before), and with a context that opens no gate.
 */
import { createActor, type AnyStateMachine } from 'xstate';
import type { TaskContext } from '../../core/task-record.js';
import { describe, expect, it } from 'vitest';
import { sessionMachine } from '../../orchestrator/sessions/session-machine.js';
import { taskMachine } from '../../orchestrator/task-machine.js';

describe("the charts' actor without input", () => {
  it('starts the task chart without an error, with gates nobody real can pass', () => {
    // As `transition()` does it: the machine as any machine, no input.
    const snapshot = createActor(taskMachine as AnyStateMachine).getSnapshot();
    expect(snapshot.status).toBe('active');
    expect(snapshot.error).toBeUndefined();
    const { policies } = snapshot.context as TaskContext;
    expect([policies.plan, policies.review, policies.deploy].flatMap((p) => p.approvers)).not.toContain('*');
  });

  it('starts the session chart without an error', () => {
    const snapshot = createActor(sessionMachine as AnyStateMachine).getSnapshot();
    expect(snapshot.status).toBe('active');
    expect(snapshot.error).toBeUndefined();
  });
});
