/**
 * A session's messages: what people send it, what its tasks and its planner report to it, and
 * what it publishes about itself. All arrive on `sg.session.<id>` and are handled one at a time
 * per session, like a task's inbox.
 */
import { z } from 'zod';
import { ModelPrice } from '../config.js';
import { GatePolicies } from '../policy.js';
import { AgentProgress, AgentRole, BacklogProposed, GitHubSource, JobFailed, Stage, TaskId, Usage } from './messages.js';

export const SessionId = TaskId;

/** Limits across the whole session; absent ones do not apply. */
export const SessionBudget = z.object({
  /** Input plus output tokens over every model call of every task and of the planner's backlogs. */
  tokens: z.number().int().positive().optional(),
  /** Priced with the session's `pricing`; calls of a model without a price count as free (and `status` says so). */
  usd: z.number().positive().optional(),
  /** No new work after this time. */
  until: z.iso.datetime().optional(),
});
export type SessionBudget = z.infer<typeof SessionBudget>;

/** Where digests and reports go, besides the session's own log (`stagegate session status`). */
export const DigestTarget = z.object({
  github: GitHubSource.optional(),
  slackChannel: z.string().min(1).optional(),
});
export type DigestTarget = z.infer<typeof DigestTarget>;

export const SessionSpec = z.object({
  repo: z.string().min(1, 'expected a repository path or git URL'),
  goal: z.string().min(1, 'expected a goal'),
  base: z.string().min(1).default('main'),
  submittedBy: z.string().min(1),
  /** Tasks running at once. */
  parallel: z.number().int().positive().max(64),
  budget: SessionBudget.default({}),
  /** On a budget: let running tasks finish (`finish`) or cancel them (`stop`). */
  onBudget: z.enum(['finish', 'stop']).default('finish'),
  /** Times one backlog item is tried before the session asks a person. */
  maxItemAttempts: z.number().int().positive().default(2),
  /** Backlog revisions before the session asks a person. */
  maxRevisions: z.number().int().positive().default(10),
  /** Digest every this many ms (absent: reports only when the session pauses, stops or completes). */
  digestEveryMs: z.number().int().positive().optional(),
  digestTo: DigestTarget.default({}),
  testCommand: z.string().min(1).optional(),
  deployCommand: z.string().min(1).optional(),
  stageTimeoutsMs: z.partialRecord(Stage, z.number().int().positive()).optional(),
  /** USD per million tokens by model, and the model each role uses: what spend is priced with. */
  pricing: z.record(z.string().min(1), ModelPrice).default({}),
  models: z.record(AgentRole, z.string().min(1)),
});
export type SessionSpec = z.infer<typeof SessionSpec>;

const envelope = { sessionId: SessionId, msgId: z.string().min(1), sentAt: z.iso.datetime() };

export const SessionStart = z.object({
  type: z.literal('session.start'),
  ...envelope,
  spec: SessionSpec,
  /** The gate policies every task of the session runs with. */
  policies: GatePolicies,
  maxReviewRounds: z.number().int().nonnegative(),
});
export type SessionStart = z.infer<typeof SessionStart>;

export const SessionPause = z.object({ type: z.literal('session.pause'), ...envelope, by: z.string().min(1), reason: z.string().optional() });
export type SessionPause = z.infer<typeof SessionPause>;

/** Resumes a paused session; a raised budget comes with it when the budget was what paused it. */
export const SessionResume = z.object({ type: z.literal('session.resume'), ...envelope, by: z.string().min(1), budget: SessionBudget.optional() });
export type SessionResume = z.infer<typeof SessionResume>;

export const SessionStop = z.object({ type: z.literal('session.stop'), ...envelope, by: z.string().min(1), reason: z.string().optional() });
export type SessionStop = z.infer<typeof SessionStop>;

/**
 * A session's task moved (or spent): sent by the orchestrator with the task's step, so it is
 * as durable as the step itself. `usage` is what this step's result spent (zero for a step
 * without one), priced with the model of the role that spent it.
 */
export const SessionTaskUpdate = z.object({
  type: z.literal('session.task_update'),
  ...envelope,
  taskId: TaskId,
  item: z.string().min(1),
  state: z.string().min(1),
  usage: Usage,
  role: AgentRole.optional(),
  /** Why the task failed or was cancelled. */
  reason: z.string().optional(),
  /** Who the task waits for at a gate, in words. */
  waitingFor: z.string().optional(),
});
export type SessionTaskUpdate = z.infer<typeof SessionTaskUpdate>;

export const SessionTimerKind = z.enum(['deadline', 'digest']);
export type SessionTimerKind = z.infer<typeof SessionTimerKind>;

export const SessionTimerFired = z.object({
  type: z.literal('session.timer_fired'),
  ...envelope,
  kind: SessionTimerKind,
  /** Which digest (the session counts them); 0 for the deadline. */
  seq: z.number().int().nonnegative(),
  fireAt: z.iso.datetime(),
});
export type SessionTimerFired = z.infer<typeof SessionTimerFired>;

/** The planner's results reach the session too; their `taskId` is the session's id. */
export const SessionMessage = z.discriminatedUnion('type', [
  SessionStart,
  SessionPause,
  SessionResume,
  SessionStop,
  SessionTaskUpdate,
  SessionTimerFired,
  BacklogProposed,
  JobFailed,
]);
export type SessionMessage = z.infer<typeof SessionMessage>;

export function sessionIdOf(message: SessionMessage): string {
  return 'sessionId' in message ? message.sessionId : message.taskId;
}

// ---- the session's log: what `stagegate session status` and the channels read ----

/** One applied session message and where it left the session: the session's audit trail. */
export const SessionEventRecorded = z.object({
  type: z.literal('session.event'),
  ...envelope,
  event: SessionMessage,
  state: z.string(),
  accepted: z.boolean(),
  note: z.string().optional(),
});
export type SessionEventRecorded = z.infer<typeof SessionEventRecorded>;

/**
 * What the session has done, what waits for whom, and what it spent: posted on its schedule,
 * and as a report when it pauses, completes or stops. `text` is Markdown for the channels.
 */
export const SessionDigest = z.object({
  type: z.literal('session.digest'),
  ...envelope,
  reason: z.enum(['scheduled', 'paused', 'completed', 'stopped']),
  state: z.string(),
  digestTo: DigestTarget,
  text: z.string(),
});
export type SessionDigest = z.infer<typeof SessionDigest>;

/** The session's log: its applied events, its digests, and the planner's progress on its backlog jobs. */
export const SessionLogEntry = z.discriminatedUnion('type', [SessionEventRecorded, SessionDigest, AgentProgress]);
export type SessionLogEntry = z.infer<typeof SessionLogEntry>;
