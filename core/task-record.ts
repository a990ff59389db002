/**
 * The persisted shape of a task: what the orchestrator stores in the tasks bucket after every
 * event, and what `status`, the HTTP API and the channels read. Parsed at every read.
 */
import { z } from 'zod';
import { GateFacts, GatePolicies, PrincipalFacts } from './policy.js';
import {
  CiPolicy,
  DecisionChannel,
  BranchUpdate,
  DurableTimer,
  ForeignCommit,
  Gate,
  GateTimerKind,
  Plan,
  CoderReviewComment,
  SecurityFinding,
  Stage,
  TaskId,
  TaskSpec,
  Usage,
  Verdict,
} from './bus/messages.js';

export const TaskState = z.enum([
  'planning',
  'awaitingPlanApproval',
  'implementing',
  'reviewing',
  'awaitingChecks',
  'awaitingReviewApproval',
  'awaitingDeployApproval',
  'awaitingCommandApproval',
  'deploying',
  'done',
  'failed',
  'cancelled',
]);
export type TaskState = z.infer<typeof TaskState>;

/** A task in one of these will never move again on its own: what the running-task limit does not count. */
export const FINISHED_STATES: ReadonlySet<TaskState> = new Set(['done', 'failed', 'cancelled']);

export function isFinished(state: TaskState): boolean {
  return FINISHED_STATES.has(state);
}

export const GATE_STATES = {
  plan: 'awaitingPlanApproval',
  review: 'awaitingReviewApproval',
  deploy: 'awaitingDeployApproval',
  command: 'awaitingCommandApproval',
} as const satisfies Record<Gate, TaskState>;

export const Decision = z.object({
  gate: Gate,
  /** Which visit to the gate this decision was made at; approvals count only for the current one. */
  visit: z.number().int().positive(),
  decision: z.enum(['approve', 'reject']),
  by: z.string(),
  via: DecisionChannel,
  comment: z.string().optional(),
  at: z.string(),
  /** False when the policy refused it; `note` then says why. */
  counted: z.boolean(),
  note: z.string().optional(),
  /** What the channel verified about the decider; principals like `github-team:` match on it. */
  principal: PrincipalFacts.optional(),
  /** The auto-approval rule that made a policy decision. */
  rule: z.string().optional(),
  /** An approval by the security group of a deploy gate held by blocking findings; `comment` is the reason. */
  securityOverride: z.literal(true).optional(),
  /** The branch head the decision was given for; a deploy approval counts only while it is the head. */
  sha: z.string().optional(),
});
export type Decision = z.infer<typeof Decision>;

/**
 * The latest visit to a gate: open while the task's state is that gate's. Its timers are the
 * durable records the orchestrator keeps in the timers bucket while the visit is open.
 */
export const GateVisit = z.object({
  gate: Gate,
  visit: z.number().int().positive(),
  openedAt: z.string(),
  /** Set when the gate timed out and its escalation group took over. */
  escalatedAt: z.string().nullable(),
  timers: z.array(z.object({ kind: GateTimerKind, fireAt: z.string(), firedAt: z.string().nullable() })),
});
export type GateVisit = z.infer<typeof GateVisit>;

export const StageRecord = z.object({
  stage: Stage,
  attempt: z.number().int().positive(),
  jobId: z.string(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  outcome: z.string().nullable(),
  usage: Usage,
});
export type StageRecord = z.infer<typeof StageRecord>;

/** The security review of the latest reviewed commit, and the one coder round its findings get. */
export const SecurityRecord = z.object({
  /** The latest review's findings (model and checks); none from a reviewer without a security review. */
  findings: z.array(SecurityFinding),
  summary: z.string(),
  /** Coder rounds spent on blocking findings: one, then they hold the deploy gate. */
  fixRounds: z.number().int().nonnegative(),
});
export type SecurityRecord = z.infer<typeof SecurityRecord>;

/** The CI-fix loop of a task with a pull request. */
export const CiRecord = z.object({
  /** Coder rounds spent on failed checks. */
  fixAttempts: z.number().int().nonnegative(),
  /** The signatures of the last red report, sorted: the same again stops the loop. */
  lastSignatures: z.array(z.string()).nullable(),
  /** The checks as last read, in plain words, for the status comment. */
  note: z.string().nullable(),
});
export type CiRecord = z.infer<typeof CiRecord>;

/** Coder rounds people's reviews of the pull request started: the loop breaker's count. */
export const ReviewerRoundsRecord = z.object({
  used: z.number().int().nonnegative(),
  /** Set when a review came after the rounds were used up: why the task waits for a person. */
  note: z.string().nullable(),
});
export type ReviewerRoundsRecord = z.infer<typeof ReviewerRoundsRecord>;

export const TaskContext = z.object({
  taskId: TaskId,
  spec: TaskSpec,
  policies: GatePolicies,
  maxReviewRounds: z.number().int().nonnegative(),
  branch: z.string(),
  plan: Plan.nullable(),
  planFeedback: z.array(z.string()),
  implementFeedback: z.array(z.string()),
  reviewRound: z.number().int().nonnegative(),
  reviewComments: z.array(CoderReviewComment),
  verdict: Verdict.nullable(),
  implementation: z.object({ commit: z.string(), summary: z.string(), attempts: z.number().int() }).nullable(),
  deployed: z.object({ commit: z.string(), target: z.string() }).nullable(),
  /** Commands people approved at the command gate; every later coder job may run them. */
  approvedCommands: z.array(z.string()),
  /** The command the coder waits to run while the task is at the command gate. */
  pendingCommand: z
    .object({ command: z.string(), pattern: z.string(), notes: z.string(), commit: z.string().nullable() })
    .nullable(),
  attempts: z.record(Stage, z.number().int().nonnegative()),
  currentJobId: z.string().nullable(),
  gateVisits: z.record(Gate, z.number().int().nonnegative()),
  /** Defaults let records written before gate timers and facts existed still parse. */
  gateVisit: GateVisit.nullable().default(null),
  /** What auto-approval rules read: the change, its checks and its review. */
  facts: GateFacts.default({ commit: null }),
  security: SecurityRecord.default({ findings: [], summary: '', fixRounds: 0 }),
  /** Null: the task does not wait for CI. */
  ciPolicy: CiPolicy.nullable().default(null),
  ci: CiRecord.default({ fixAttempts: 0, lastSignatures: null, note: null }),
  reviewerRounds: ReviewerRoundsRecord.default({ used: 0, note: null }),
  /** At most this many coder rounds from people's reviews; null: the channel's own limit. */
  maxReviewerRounds: z.number().int().nonnegative().nullable().default(null),
  /** The commit the task's branch points at, as last known: the coder's, or a push seen on its pull request. */
  head: z.string().nullable().default(null),
  /** The commit the latest review job was given: what its verdict and the gate facts describe. */
  reviewCommit: z.string().nullable().default(null),
  /** The head the deploy gate was passed for: what the deploy job merges, on every attempt. */
  deployCommit: z.string().nullable().default(null),
  /** The update from the base the current (or retried) implement job makes; null: an ordinary round. */
  update: BranchUpdate.nullable().default(null),
  /** Reviews that do not use up the task's review rounds: of an update round's result, and of a person's push at the review gate. */
  freeReviews: z.number().int().nonnegative().default(0),
  /** Commits on the branch Stagegate did not make, as the coder last found them: the status comment names them. */
  foreignCommits: z.array(ForeignCommit).default([]),
  /** The latest push to the branch a channel saw, and who made it: until the coder's next commit, the status comment names it. */
  lastPush: z.object({ sha: z.string(), by: z.string(), at: z.string() }).nullable().default(null),
  decisions: z.array(Decision),
  stages: z.array(StageRecord),
  usage: Usage,
  error: z.object({ stage: Stage, reason: z.string() }).nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type TaskContext = z.infer<typeof TaskContext>;

/**
 * Model usage one agent result reported, for the daily spend caps: whose it is (the task's
 * repository and owner, as `accountOf` names them) and the UTC day it was reported on.
 */
export const SpendFact = z.object({
  taskId: TaskId,
  repo: z.string().min(1),
  org: z.string().min(1).optional(),
  day: z.iso.date(),
  model: z.string().min(1).optional(),
  usage: Usage,
});
export type SpendFact = z.infer<typeof SpendFact>;

/**
 * What the orchestrator owes after a commit; kept so a redelivered event can redo it. Each is
 * safe to repeat: publishes carry a Nats-Msg-Id, a timer is created only if absent, a spend
 * entry is written under its result's message id only once.
 */
export const Effect = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('publish'), subject: z.string(), msgId: z.string(), payload: z.unknown() }),
  /** Keep a durable timer (`key` in the timers bucket). */
  z.object({ kind: z.literal('timer.set'), key: z.string(), msgId: z.string(), payload: DurableTimer }),
  /** Drop one: its gate visit was left, its stage ended, its session finished. */
  z.object({ kind: z.literal('timer.clear'), key: z.string(), msgId: z.string(), payload: DurableTimer }),
  /** Count an agent result's usage toward its day's spend (`msgId`: the result's). */
  z.object({ kind: z.literal('spend.record'), msgId: z.string(), payload: SpendFact }),
]);
export type Effect = z.infer<typeof Effect>;

export const TaskRecord = z.object({
  version: z.literal(1),
  state: TaskState,
  context: TaskContext,
  /** The last events applied, with the effects each one owed, newest last. */
  applied: z.array(z.object({ msgId: z.string(), effects: z.array(Effect) })),
});
export type TaskRecord = z.infer<typeof TaskRecord>;

export function emptyUsage(): Usage {
  return { calls: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 };
}

export function addUsage(a: Usage, b: Usage): Usage {
  return {
    calls: a.calls + b.calls,
    inputTokens: a.inputTokens + b.inputTokens,
    cachedTokens: a.cachedTokens + b.cachedTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    reasoningTokens: a.reasoningTokens + b.reasoningTokens,
    ...(a.queueWaitMs === undefined && b.queueWaitMs === undefined ? {} : { queueWaitMs: (a.queueWaitMs ?? 0) + (b.queueWaitMs ?? 0) }),
  };
}

export function gateAt(state: TaskState): Gate | undefined {
  const entry = Object.entries(GATE_STATES).find(([, s]) => s === state);
  return entry === undefined ? undefined : Gate.parse(entry[0]);
}

/** The commit whose CI checks count: the branch's head (a person may have pushed since the coder). */
export function checkedCommit(context: TaskContext): string | undefined {
  return context.head ?? context.implementation?.commit;
}
