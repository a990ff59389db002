/**
 * The session statechart. Like the task chart it is only driven through XState's pure
 * `transition()`: the orchestrator loads a session, applies one event, commits, and only then
 * performs what the step owes (`session-step.ts`). Time comes from the event's `sentAt`.
 *
 * planning (the planner makes or revises the backlog) → running (tasks start as their
 * dependencies finish, at most `parallel` at once) → completed. A failed task, or items that
 * can no longer start, send the session back to planning for a revision; past the attempt or
 * revision limit, or at a budget, it pauses and waits for a person. `stop` ends it.
 */
import { and, assign, setup } from 'xstate';
import { backlogProblem } from '../../core/bus/messages.js';
import type { SessionMessage, SessionStart } from '../../core/bus/session-messages.js';
import type { PlannerJob, SessionContext, SessionPauseRecord } from '../../core/session-record.js';
import { emptyUsage } from '../../core/task-record.js';
import { INPUT_OF_THROWAWAY_ACTOR as TASK_INPUT } from '../task-machine.js';
import {
  addSpend,
  allSettled,
  applyBacklog,
  blockedItems,
  budgetReached,
  failedItems,
  itemsToStart,
  recordTaskUpdate,
  revisionReason,
  startItems,
} from './backlog-state.js';

export type SessionEvent = Exclude<SessionMessage, SessionStart>;

/** Backlog jobs that may fail in a row before the session asks a person. */
export const PLANNER_ATTEMPTS = 3;

export function backlogJobId(sessionId: string, sequence: number): string {
  return `${sessionId}:backlog:${sequence}`;
}

/** The next backlog job, with the fields it changes: its own number, so a retried job is a new job. */
function nextPlannerJob(context: SessionContext, reason: string | null): Pick<SessionContext, 'plannerJob' | 'plannerJobs'> {
  const sequence = context.plannerJobs + 1;
  const job: PlannerJob = {
    jobId: backlogJobId(context.sessionId, sequence),
    attempt: context.plannerFailures + 1,
    revision: context.revisions.length + 1,
    reason,
  };
  return { plannerJob: job, plannerJobs: sequence };
}

function settledIds(context: SessionContext): Set<string> {
  return new Set(context.items.filter((i) => i.status === 'done' || i.status === 'running').map((i) => i.id));
}

/** The backlog in the event can be run on top of what is settled (the planner checks this too; the session does not take it on trust). */
function backlogProblemOf(context: SessionContext, event: SessionEvent): string | undefined {
  return event.type === 'backlog.proposed' ? backlogProblem(event.backlog, settledIds(context)) : undefined;
}

/** What keeps the session from going on without a person, in words; undefined when nothing does. */
export function needsPersonReason(context: SessionContext): string | undefined {
  const maxAttempts = context.spec.maxItemAttempts + context.grantedAttempts;
  const exhausted = failedItems(context.items).find((i) => i.attempts >= maxAttempts);
  if (exhausted !== undefined) return `item ${exhausted.id} failed ${exhausted.attempts} time(s): ${exhausted.outcome ?? 'no reason given'}`;
  const revisionsMade = Math.max(0, context.revisions.length - 1);
  if (needsRevision(context) && revisionsMade >= context.spec.maxRevisions + context.grantedRevisions) {
    return `the backlog was revised ${revisionsMade} time(s) and needs revising again: ${revisionReason(context.items)}`;
  }
  return undefined;
}

function needsRevision(context: SessionContext): boolean {
  return context.revisions.length === 0 || failedItems(context.items).length > 0 || blockedItems(context.items).length > 0;
}

function pauseRecord(kind: SessionPauseRecord['kind'], reason: string, at: string): SessionPauseRecord {
  return { kind, reason, at };
}

/** The session chart's input for XState's throwaway actor, for the reason the task chart has one (`task-machine.ts`). */
const INPUT_OF_THROWAWAY_ACTOR: SessionStart = {
  type: 'session.start',
  sessionId: TASK_INPUT.taskId,
  msgId: TASK_INPUT.msgId,
  sentAt: TASK_INPUT.sentAt,
  spec: {
    repo: '-',
    goal: '-',
    base: 'main',
    submittedBy: '-',
    parallel: 1,
    budget: {},
    onBudget: 'finish',
    maxItemAttempts: 1,
    maxRevisions: 1,
    digestTo: {},
    pricing: {},
    models: { planner: '-', coder: '-', reviewer: '-', deployer: '-' },
  },
  policies: TASK_INPUT.policies,
  maxReviewRounds: 0,
};

const sessionSetup = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionStart,
  },
  guards: {
    isPlannerJob: ({ context, event }) => 'jobId' in event && event.jobId === context.plannerJob?.jobId,
    isUsableBacklog: ({ context, event }) =>
      event.type === 'backlog.proposed' && event.jobId === context.plannerJob?.jobId && backlogProblemOf(context, event) === undefined,
    plannerRetriesLeft: ({ context }) => context.plannerFailures + 1 < PLANNER_ATTEMPTS,
    budgetReached: ({ context, event }) => budgetReached(context, event.sentAt) !== undefined,
    plannerInFlight: ({ context }) => context.plannerJob !== null,
    needsPerson: ({ context }) => needsPersonReason(context) !== undefined,
    needsRevision: ({ context }) => needsRevision(context),
    allSettled: ({ context }) => allSettled(context.items),
    canStart: ({ context }) => itemsToStart(context).length > 0,
    resumable: ({ context, event }) => {
      if (event.type !== 'session.resume') return false;
      const budget = { ...context.spec.budget, ...event.budget };
      return budgetReached({ ...context, spec: { ...context.spec, budget } }, event.sentAt) === undefined;
    },
  },
  actions: {
    recordTaskUpdate: assign(({ context, event }) => {
      if (event.type !== 'session.task_update') return {};
      return { items: recordTaskUpdate(context, event), ...addSpend(context, event.usage, event.role) };
    }),
    recordPlannerSpend: assign(({ context, event }) => {
      if (event.type !== 'backlog.proposed' && event.type !== 'job.failed') return {};
      return addSpend(context, event.usage, 'planner');
    }),
    applyBacklog: assign(({ context, event }) => {
      if (event.type !== 'backlog.proposed') return {};
      const revision = {
        revision: context.revisions.length + 1,
        at: event.sentAt,
        reason: context.plannerJob?.reason ?? null,
        summary: event.backlog.summary,
        items: event.backlog.items,
      };
      return { revisions: [...context.revisions, revision], items: applyBacklog(context.items, event.backlog), plannerJob: null, plannerFailures: 0 };
    }),
    /** A backlog that breaks the rules counts as a failed backlog job. */
    recordPlannerFailure: assign(({ context }) => ({ plannerJob: null, plannerFailures: context.plannerFailures + 1 })),
    retryPlanner: assign(({ context }) => {
      const failed = { ...context, plannerFailures: context.plannerFailures + 1 };
      return { plannerFailures: failed.plannerFailures, ...nextPlannerJob(failed, context.plannerJob?.reason ?? null) };
    }),
    requestRevision: assign(({ context }) => nextPlannerJob(context, context.revisions.length === 0 ? null : revisionReason(context.items))),
    startItems: assign(({ context, event }) => ({ items: startItems(context, event.sentAt) })),
    pauseForBudget: assign(({ context, event }) => ({ pause: pauseRecord('budget', budgetReached(context, event.sentAt) ?? 'a budget', event.sentAt) })),
    pauseForPerson: assign(({ context, event }) => ({ pause: pauseRecord('needs-human', needsPersonReason(context) ?? 'a person is needed', event.sentAt) })),
    pauseForPlanner: assign(({ context, event }) => {
      const why = event.type === 'job.failed' ? event.reason : backlogProblemOf(context, event);
      return { pause: pauseRecord('needs-human', `the planner failed ${PLANNER_ATTEMPTS} times in a row${why === undefined ? '' : `; last: ${why}`}`, event.sentAt) };
    }),
    pauseByRequest: assign(({ event }) => {
      if (event.type !== 'session.pause') return {};
      return { pause: pauseRecord('human', `paused by ${event.by}${event.reason === undefined ? '' : `: ${event.reason}`}`, event.sentAt) };
    }),
    resume: assign(({ context, event }) => {
      if (event.type !== 'session.resume') return {};
      const askedPerson = context.pause?.kind === 'needs-human';
      return {
        pause: null,
        spec: { ...context.spec, budget: { ...context.spec.budget, ...event.budget } },
        // Going on after the session asked for a person grants one more try of what stopped it.
        grantedAttempts: context.grantedAttempts + (askedPerson ? 1 : 0),
        grantedRevisions: context.grantedRevisions + (askedPerson ? 1 : 0),
        plannerFailures: askedPerson ? 0 : context.plannerFailures,
      };
    }),
    recordStop: assign(({ event }) => {
      if (event.type !== 'session.stop') return {};
      return { outcome: `stopped by ${event.by}${event.reason === undefined ? '' : `: ${event.reason}`}` };
    }),
    recordCompletion: assign(({ context }) => ({
      outcome: `completed: ${context.items.filter((i) => i.status === 'done').length} item(s) done, ${context.items.filter((i) => i.status === 'dropped').length} dropped`,
    })),
    recordDigest: assign(({ context, event }) => {
      if (event.type !== 'session.timer_fired' || event.kind !== 'digest' || event.seq !== context.digests + 1) return {};
      return { digests: context.digests + 1, lastDigestAt: event.sentAt };
    }),
  },
});

/** A backlog job failed (or answered with a backlog that cannot run): try again, or ask a person. */
const plannerFailed = [
  { guard: and(['isPlannerJob', 'plannerRetriesLeft']), target: 'planning', reenter: true, actions: ['recordPlannerSpend', 'retryPlanner'] },
  { guard: 'isPlannerJob', target: 'paused', actions: ['recordPlannerSpend', 'pauseForPlanner', 'recordPlannerFailure'] },
] as const;

export const sessionMachine = sessionSetup.createMachine({
  id: 'session',
  context: ({ input = INPUT_OF_THROWAWAY_ACTOR }) => {
    const context: SessionContext = {
      sessionId: input.sessionId,
      spec: input.spec,
      policies: input.policies,
      maxReviewRounds: input.maxReviewRounds,
      revisions: [],
      items: [],
      plannerJob: null,
      plannerJobs: 0,
      plannerFailures: 0,
      grantedAttempts: 0,
      grantedRevisions: 0,
      usage: emptyUsage(),
      costUsd: 0,
      unpricedModels: [],
      pause: null,
      digests: 0,
      lastDigestAt: null,
      outcome: null,
      createdAt: input.sentAt,
      updatedAt: input.sentAt,
    };
    return { ...context, ...nextPlannerJob(context, null) };
  },
  initial: 'planning',
  on: {
    'session.task_update': { actions: 'recordTaskUpdate' },
  },
  states: {
    planning: {
      always: { guard: 'budgetReached', target: 'paused', actions: 'pauseForBudget' },
      on: {
        'backlog.proposed': [
          { guard: 'isUsableBacklog', target: 'running', actions: ['recordPlannerSpend', 'applyBacklog'] },
          ...plannerFailed,
        ],
        'job.failed': plannerFailed,
        'session.pause': { target: 'paused', actions: 'pauseByRequest' },
        'session.stop': { target: 'stopped', actions: 'recordStop' },
        'session.timer_fired': { actions: 'recordDigest' },
      },
    },
    running: {
      always: [
        { guard: 'budgetReached', target: 'paused', actions: 'pauseForBudget' },
        { guard: 'plannerInFlight', target: 'planning' },
        { guard: 'needsPerson', target: 'paused', actions: 'pauseForPerson' },
        { guard: 'needsRevision', target: 'planning', actions: 'requestRevision' },
        { guard: 'allSettled', target: 'completed', actions: 'recordCompletion' },
        { guard: 'canStart', actions: 'startItems' },
      ],
      on: {
        'session.pause': { target: 'paused', actions: 'pauseByRequest' },
        'session.stop': { target: 'stopped', actions: 'recordStop' },
        'session.timer_fired': { actions: 'recordDigest' },
      },
    },
    paused: {
      on: {
        'backlog.proposed': [
          { guard: 'isUsableBacklog', actions: ['recordPlannerSpend', 'applyBacklog'] },
          { guard: 'isPlannerJob', actions: ['recordPlannerSpend', 'recordPlannerFailure'] },
        ],
        'job.failed': { guard: 'isPlannerJob', actions: ['recordPlannerSpend', 'recordPlannerFailure'] },
        'session.resume': { guard: 'resumable', target: 'running', actions: 'resume' },
        'session.stop': { target: 'stopped', actions: 'recordStop' },
        'session.timer_fired': { actions: 'recordDigest' },
      },
    },
    completed: {},
    stopped: {},
  },
});
