/**
 * The task statechart. It is only ever driven through XState's pure `transition()`: the
 * orchestrator loads a snapshot, applies one event, commits the result, and only then performs
 * the actions it returned. Guards and actions therefore read nothing but the task and the event;
 * time comes from the event's `sentAt`.
 *
 * planning → awaitingPlanApproval → implementing → reviewing
 *   ↺ changes requested → implementing (while rounds are left, else awaitingReviewApproval)
 * → awaitingDeployApproval → deploying → done; plus failed (retryable) and cancelled.
 */
import { assign, setup } from 'xstate';
import type { Gate, InboxMessage, Stage, TaskSubmit } from '../core/bus/messages.js';
import { isAllowedApprover, policyFor } from '../core/policy.js';
import { addUsage, emptyUsage, type Decision, type TaskContext } from '../core/task-record.js';

export type TaskEvent = Exclude<InboxMessage, TaskSubmit>;
type DecideEvent = Extract<TaskEvent, { type: 'gate.decide' }>;

const FAILED_STAGE_TARGET = {
  plan: 'planning',
  implement: 'implementing',
  review: 'reviewing',
  deploy: 'deploying',
} as const satisfies Record<Stage, string>;

export function jobIdFor(taskId: string, stage: Stage, attempt: number): string {
  return `${taskId}:${stage}:${attempt}`;
}

export function branchFor(taskId: string): string {
  return `stagegate/${taskId}`;
}

function approvalsAtVisit(context: TaskContext, gate: Gate): Decision[] {
  const visit = context.gateVisits[gate];
  return context.decisions.filter(
    (d) => d.gate === gate && d.visit === visit && d.decision === 'approve' && d.counted,
  );
}

/** Why a decision cannot count at this gate, or undefined when it can. */
export function refusalOf(context: TaskContext, gate: Gate, event: TaskEvent): string | undefined {
  if (event.type !== 'gate.decide') return 'not a decision';
  if (event.gate !== gate) return `the task is waiting at the ${gate} gate, not the ${event.gate} gate`;
  if (!isAllowedApprover(policyFor(context.policies, gate), event.by)) {
    return `${event.by} is not an approver for the ${gate} gate`;
  }
  if (event.decision === 'approve' && approvalsAtVisit(context, gate).some((d) => d.by === event.by)) {
    return `${event.by} has already approved this gate`;
  }
  return undefined;
}

/** The init event (first entry into planning) has no time of its own; the task's creation time stands in. */
function timeOf(context: TaskContext, event: { sentAt?: string }): string {
  return event.sentAt ?? context.updatedAt;
}

function decisionRecord(context: TaskContext, event: DecideEvent, gate: Gate, note?: string): Decision {
  return {
    gate,
    visit: context.gateVisits[gate],
    decision: event.decision,
    by: event.by,
    via: event.via,
    ...(event.comment === undefined ? {} : { comment: event.comment }),
    at: event.sentAt,
    counted: note === undefined,
    ...(note === undefined ? {} : { note }),
  };
}

export const taskMachine = setup({
  types: {
    context: {} as TaskContext,
    events: {} as TaskEvent,
    input: {} as TaskSubmit,
  },
  guards: {
    isCurrentJob: ({ context, event }) => 'jobId' in event && event.jobId === context.currentJobId,
    hasReviewRoundsLeft: ({ context, event }) =>
      'jobId' in event && event.jobId === context.currentJobId && context.reviewRound <= context.maxReviewRounds,
    autoApproves: ({ context }, params: { gate: Gate }) => policyFor(context.policies, params.gate).autoApprove,
    approvalPassesGate: ({ context, event }, params: { gate: Gate }) =>
      event.type === 'gate.decide' &&
      event.decision === 'approve' &&
      refusalOf(context, params.gate, event) === undefined &&
      approvalsAtVisit(context, params.gate).length + 1 >= policyFor(context.policies, params.gate).required,
    decisionCounts: ({ context, event }, params: { gate: Gate; decision: 'approve' | 'reject' }) =>
      event.type === 'gate.decide' &&
      event.decision === params.decision &&
      refusalOf(context, params.gate, event) === undefined,
    failedAt: ({ context }, params: { stage: Stage }) => context.error?.stage === params.stage,
  },
  actions: {
    startStage: assign(({ context, event }, params: { stage: Stage }) => {
      const at = timeOf(context, event);
      const attempt = context.attempts[params.stage] + 1;
      const jobId = jobIdFor(context.taskId, params.stage, attempt);
      return {
        attempts: { ...context.attempts, [params.stage]: attempt },
        currentJobId: jobId,
        // A retried review re-runs the same round: a failed reviewer job must not use up a round.
        reviewRound:
          params.stage === 'review' && event.type !== 'task.retry' ? context.reviewRound + 1 : context.reviewRound,
        error: null,
        stages: [
          ...context.stages,
          { stage: params.stage, attempt, jobId, startedAt: at, endedAt: null, outcome: null, usage: emptyUsage() },
        ],
        updatedAt: at,
      };
    }),
    endStage: assign(({ context, event }, params: { outcome: string }) => {
      const usage = 'usage' in event ? event.usage : emptyUsage();
      const stages = context.stages.map((s) =>
        s.jobId === context.currentJobId && s.endedAt === null
          ? { ...s, endedAt: event.sentAt, outcome: params.outcome, usage: addUsage(s.usage, usage) }
          : s,
      );
      return { stages, usage: addUsage(context.usage, usage), currentJobId: null, updatedAt: event.sentAt };
    }),
    /** Performed after the commit by the effects runner; it composes the job from the context. */
    dispatchJob: (_args, _params: { stage: Stage }) => {},
    recordPlan: assign(({ event }) => (event.type === 'plan.proposed' ? { plan: event.plan, verdict: null } : {})),
    recordImplementation: assign(({ event }) =>
      event.type === 'code.committed'
        ? { implementation: { commit: event.commit, summary: event.summary, attempts: event.attempts } }
        : {},
    ),
    recordVerdict: assign(({ event }) =>
      event.type === 'review.approved' || event.type === 'review.changes_requested'
        ? { verdict: event.verdict, reviewComments: event.verdict.comments }
        : {},
    ),
    recordPendingCommand: assign(({ event }) =>
      event.type === 'command.approval_requested'
        ? { pendingCommand: { command: event.command, pattern: event.pattern, notes: event.notes, commit: event.commit } }
        : {},
    ),
    /** The resumed coder job may run the command, and is told where it left off. */
    approveCommand: assign(({ context }) => {
      const pending = context.pendingCommand;
      if (pending === null) return {};
      const note = `A person approved running \`${pending.command}\`: run it now and carry on. Where you left off: ${pending.notes}`;
      return {
        approvedCommands: [...context.approvedCommands, pending.command],
        implementFeedback: [...context.implementFeedback, note],
        pendingCommand: null,
      };
    }),
    rejectCommand: assign(({ context, event }) => {
      const pending = context.pendingCommand;
      if (pending === null || event.type !== 'gate.decide') return {};
      const why = event.comment === undefined ? '' : ` (${event.comment})`;
      const note = `A person did not approve running \`${pending.command}\`${why}: do without it. Where you left off: ${pending.notes}`;
      return { implementFeedback: [...context.implementFeedback, note], pendingCommand: null };
    }),
    recordDeploy: assign(({ event }) =>
      event.type === 'deploy.succeeded' ? { deployed: { commit: event.commit, target: event.target } } : {},
    ),
    /** The stage comes from the state that failed, never from the event: `task.retry` re-enters it. */
    recordFailure: assign(({ event }, params: { stage: Stage }) =>
      event.type === 'job.failed' ? { error: { stage: params.stage, reason: event.reason } } : {},
    ),
    openGate: assign(({ context, event }, params: { gate: Gate }) => ({
      gateVisits: { ...context.gateVisits, [params.gate]: context.gateVisits[params.gate] + 1 },
      updatedAt: timeOf(context, event),
    })),
    recordAutoApproval: assign(({ context, event }, params: { gate: Gate }) => ({
      decisions: [
        ...context.decisions,
        {
          gate: params.gate,
          visit: context.gateVisits[params.gate],
          decision: 'approve' as const,
          by: 'policy:auto-approve',
          via: 'policy' as const,
          at: event.sentAt,
          counted: true,
        },
      ],
    })),
    recordDecision: assign(({ context, event }, params: { gate: Gate }) =>
      event.type === 'gate.decide'
        ? { decisions: [...context.decisions, decisionRecord(context, event, params.gate, refusalOf(context, params.gate, event))] }
        : {},
    ),
    addPlanFeedback: assign(({ context, event }) =>
      event.type === 'gate.decide' && event.comment !== undefined
        ? { planFeedback: [...context.planFeedback, event.comment] }
        : {},
    ),
    addImplementFeedback: assign(({ context, event }) =>
      event.type === 'gate.decide' && event.comment !== undefined
        ? { implementFeedback: [...context.implementFeedback, event.comment] }
        : {},
    ),
    /** `stage: null` keeps the stage a failed task stopped at. */
    recordCancel: assign(({ context, event }, params: { stage: Stage | null }) =>
      event.type === 'task.cancel'
        ? {
            error: {
              stage: params.stage ?? context.error?.stage ?? 'plan',
              reason: `cancelled by ${event.by}: ${event.reason}`,
            },
            currentJobId: null,
            updatedAt: event.sentAt,
          }
        : {},
    ),
  },
}).createMachine({
  id: 'task',
  context: ({ input }) => ({
    taskId: input.taskId,
    spec: input.spec,
    policies: input.policies,
    maxReviewRounds: input.maxReviewRounds,
    branch: branchFor(input.taskId),
    plan: null,
    planFeedback: [],
    implementFeedback: [],
    reviewRound: 0,
    reviewComments: [],
    verdict: null,
    implementation: null,
    deployed: null,
    approvedCommands: [],
    pendingCommand: null,
    attempts: { plan: 0, implement: 0, review: 0, deploy: 0 },
    currentJobId: null,
    gateVisits: { plan: 0, review: 0, deploy: 0, command: 0 },
    decisions: [],
    stages: [],
    usage: emptyUsage(),
    error: null,
    createdAt: input.sentAt,
    updatedAt: input.sentAt,
  }),
  initial: 'planning',
  // task.cancel is handled per state, not on the root: a root handler would also fire in the final
  // states (pure `transition()` does not stop at a final state), turning a done task into cancelled.
  states: {
    planning: {
      entry: [
        { type: 'startStage', params: { stage: 'plan' } },
        { type: 'dispatchJob', params: { stage: 'plan' } },
      ],
      on: {
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'plan' } } },
        'plan.proposed': {
          guard: 'isCurrentJob',
          target: 'awaitingPlanApproval',
          actions: [{ type: 'endStage', params: { outcome: 'plan proposed' } }, 'recordPlan'],
        },
        'job.failed': {
          guard: 'isCurrentJob',
          target: 'failed',
          actions: [
            { type: 'endStage', params: { outcome: 'failed' } },
            { type: 'recordFailure', params: { stage: 'plan' } },
          ],
        },
      },
    },
    awaitingPlanApproval: {
      entry: { type: 'openGate', params: { gate: 'plan' } },
      always: {
        guard: { type: 'autoApproves', params: { gate: 'plan' } },
        target: 'implementing',
        actions: { type: 'recordAutoApproval', params: { gate: 'plan' } },
      },
      on: {
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'plan' } } },
        'gate.decide': [
          {
            guard: { type: 'approvalPassesGate', params: { gate: 'plan' } },
            target: 'implementing',
            actions: { type: 'recordDecision', params: { gate: 'plan' } },
          },
          {
            guard: { type: 'decisionCounts', params: { gate: 'plan', decision: 'reject' } },
            target: 'planning',
            actions: [{ type: 'recordDecision', params: { gate: 'plan' } }, 'addPlanFeedback'],
          },
          { actions: { type: 'recordDecision', params: { gate: 'plan' } } },
        ],
      },
    },
    implementing: {
      entry: [
        { type: 'startStage', params: { stage: 'implement' } },
        { type: 'dispatchJob', params: { stage: 'implement' } },
      ],
      on: {
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'implement' } } },
        'command.approval_requested': {
          guard: 'isCurrentJob',
          target: 'awaitingCommandApproval',
          actions: [{ type: 'endStage', params: { outcome: 'waiting for approval' } }, 'recordPendingCommand'],
        },
        'code.committed': {
          guard: 'isCurrentJob',
          target: 'reviewing',
          actions: [{ type: 'endStage', params: { outcome: 'committed' } }, 'recordImplementation'],
        },
        'job.failed': {
          guard: 'isCurrentJob',
          target: 'failed',
          actions: [
            { type: 'endStage', params: { outcome: 'failed' } },
            { type: 'recordFailure', params: { stage: 'implement' } },
          ],
        },
      },
    },
    awaitingCommandApproval: {
      entry: { type: 'openGate', params: { gate: 'command' } },
      always: {
        guard: { type: 'autoApproves', params: { gate: 'command' } },
        target: 'implementing',
        actions: [{ type: 'recordAutoApproval', params: { gate: 'command' } }, 'approveCommand'],
      },
      on: {
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'implement' } } },
        'gate.decide': [
          {
            guard: { type: 'approvalPassesGate', params: { gate: 'command' } },
            target: 'implementing',
            actions: [{ type: 'recordDecision', params: { gate: 'command' } }, 'approveCommand'],
          },
          {
            guard: { type: 'decisionCounts', params: { gate: 'command', decision: 'reject' } },
            target: 'implementing',
            actions: [{ type: 'recordDecision', params: { gate: 'command' } }, 'rejectCommand'],
          },
          { actions: { type: 'recordDecision', params: { gate: 'command' } } },
        ],
      },
    },
    reviewing: {
      entry: [
        { type: 'startStage', params: { stage: 'review' } },
        { type: 'dispatchJob', params: { stage: 'review' } },
      ],
      on: {
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'review' } } },
        'review.approved': {
          guard: 'isCurrentJob',
          target: 'awaitingDeployApproval',
          actions: [{ type: 'endStage', params: { outcome: 'approved' } }, 'recordVerdict'],
        },
        'review.changes_requested': [
          {
            guard: 'hasReviewRoundsLeft',
            target: 'implementing',
            actions: [{ type: 'endStage', params: { outcome: 'changes requested' } }, 'recordVerdict'],
          },
          {
            guard: 'isCurrentJob',
            target: 'awaitingReviewApproval',
            actions: [{ type: 'endStage', params: { outcome: 'changes requested' } }, 'recordVerdict'],
          },
        ],
        'job.failed': {
          guard: 'isCurrentJob',
          target: 'failed',
          actions: [
            { type: 'endStage', params: { outcome: 'failed' } },
            { type: 'recordFailure', params: { stage: 'review' } },
          ],
        },
      },
    },
    awaitingReviewApproval: {
      entry: { type: 'openGate', params: { gate: 'review' } },
      always: {
        guard: { type: 'autoApproves', params: { gate: 'review' } },
        target: 'awaitingDeployApproval',
        actions: { type: 'recordAutoApproval', params: { gate: 'review' } },
      },
      on: {
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'review' } } },
        'gate.decide': [
          {
            guard: { type: 'approvalPassesGate', params: { gate: 'review' } },
            target: 'awaitingDeployApproval',
            actions: { type: 'recordDecision', params: { gate: 'review' } },
          },
          {
            guard: { type: 'decisionCounts', params: { gate: 'review', decision: 'reject' } },
            target: 'implementing',
            actions: [{ type: 'recordDecision', params: { gate: 'review' } }, 'addImplementFeedback'],
          },
          { actions: { type: 'recordDecision', params: { gate: 'review' } } },
        ],
      },
    },
    awaitingDeployApproval: {
      entry: { type: 'openGate', params: { gate: 'deploy' } },
      always: {
        guard: { type: 'autoApproves', params: { gate: 'deploy' } },
        target: 'deploying',
        actions: { type: 'recordAutoApproval', params: { gate: 'deploy' } },
      },
      on: {
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'deploy' } } },
        'gate.decide': [
          {
            guard: { type: 'approvalPassesGate', params: { gate: 'deploy' } },
            target: 'deploying',
            actions: { type: 'recordDecision', params: { gate: 'deploy' } },
          },
          {
            guard: { type: 'decisionCounts', params: { gate: 'deploy', decision: 'reject' } },
            target: 'implementing',
            actions: [{ type: 'recordDecision', params: { gate: 'deploy' } }, 'addImplementFeedback'],
          },
          { actions: { type: 'recordDecision', params: { gate: 'deploy' } } },
        ],
      },
    },
    deploying: {
      entry: [
        { type: 'startStage', params: { stage: 'deploy' } },
        { type: 'dispatchJob', params: { stage: 'deploy' } },
      ],
      on: {
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: 'deploy' } } },
        'deploy.succeeded': {
          guard: 'isCurrentJob',
          target: 'done',
          actions: [{ type: 'endStage', params: { outcome: 'deployed' } }, 'recordDeploy'],
        },
        'job.failed': {
          guard: 'isCurrentJob',
          target: 'failed',
          actions: [
            { type: 'endStage', params: { outcome: 'failed' } },
            { type: 'recordFailure', params: { stage: 'deploy' } },
          ],
        },
      },
    },
    done: { type: 'final' },
    failed: {
      on: {
        'task.cancel': { target: 'cancelled', actions: { type: 'recordCancel', params: { stage: null } } },
        'task.retry': (['plan', 'implement', 'review', 'deploy'] as const).map((stage) => ({
          guard: { type: 'failedAt' as const, params: { stage } },
          target: FAILED_STAGE_TARGET[stage],
        })),
      },
    },
    cancelled: { type: 'final' },
  },
});

export type TaskMachine = typeof taskMachine;
