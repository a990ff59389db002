/**
 * The persisted shape of a session: what the orchestrator stores in the sessions bucket after
 * every session event, and what `stagegate session status` reads. Parsed at every read.
 */
import { z } from 'zod';
import { BacklogItem, BacklogItemStatus, TaskId, Usage } from './bus/messages.js';
import { SessionSpec } from './bus/session-messages.js';
import { GatePolicies } from './policy.js';
import { Effect } from './task-record.js';

/**
 * `planning`: the planner is making or revising the backlog (running tasks go on, none starts);
 * `running`: tasks start as their dependencies finish; `paused`: nothing new starts (a person,
 * a budget, or a failure that needs a person); `completed` and `stopped` take no more work.
 */
export const SessionState = z.enum(['planning', 'running', 'paused', 'completed', 'stopped']);
export type SessionState = z.infer<typeof SessionState>;

export const SessionItem = BacklogItemStatus.extend({
  /** The task of the latest attempt. */
  taskId: TaskId.nullable(),
  /** That task's state as last reported. */
  taskState: z.string().nullable(),
  waitingFor: z.string().optional(),
  /** Spent by every attempt of this item. */
  usage: Usage,
  costUsd: z.number().nonnegative(),
  startedAt: z.string().nullable(),
  endedAt: z.string().nullable(),
});
export type SessionItem = z.infer<typeof SessionItem>;

/** Every backlog the planner made, the first one included; none is ever overwritten. */
export const BacklogRevision = z.object({
  revision: z.number().int().positive(),
  at: z.string(),
  reason: z.string().nullable(),
  summary: z.string(),
  items: z.array(BacklogItem),
});
export type BacklogRevision = z.infer<typeof BacklogRevision>;

export const PlannerJob = z.object({
  jobId: z.string(),
  attempt: z.number().int().positive(),
  revision: z.number().int().positive(),
  reason: z.string().nullable(),
});
export type PlannerJob = z.infer<typeof PlannerJob>;

export const SessionPauseRecord = z.object({
  kind: z.enum(['human', 'budget', 'needs-human']),
  reason: z.string(),
  at: z.string(),
});
export type SessionPauseRecord = z.infer<typeof SessionPauseRecord>;

export const SessionContext = z.object({
  sessionId: TaskId,
  spec: SessionSpec,
  policies: GatePolicies,
  maxReviewRounds: z.number().int().nonnegative(),
  revisions: z.array(BacklogRevision),
  items: z.array(SessionItem),
  /** The backlog job in flight, if any. */
  plannerJob: PlannerJob.nullable(),
  /** Backlog jobs dispatched so far: each job's id is built from its number, so none repeats. */
  plannerJobs: z.number().int().nonnegative(),
  /** Failed backlog jobs in a row. */
  plannerFailures: z.number().int().nonnegative(),
  /** Extra attempts and revisions people granted by resuming after the session asked them. */
  grantedAttempts: z.number().int().nonnegative(),
  grantedRevisions: z.number().int().nonnegative(),
  usage: Usage,
  costUsd: z.number().nonnegative(),
  /** Models whose calls had no price: their spend is not in `costUsd`. */
  unpricedModels: z.array(z.string()),
  pause: SessionPauseRecord.nullable(),
  /** Scheduled digests so far; the next one's timer is for `digests + 1`. */
  digests: z.number().int().nonnegative(),
  lastDigestAt: z.string().nullable(),
  /** How the session ended, in words (completed or stopped). */
  outcome: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type SessionContext = z.infer<typeof SessionContext>;

export const SessionRecord = z.object({
  version: z.literal(1),
  state: SessionState,
  context: SessionContext,
  /** The last events applied, with the effects each owed, newest last. */
  applied: z.array(z.object({ msgId: z.string(), effects: z.array(Effect) })),
});
export type SessionRecord = z.infer<typeof SessionRecord>;
