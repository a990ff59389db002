/**
 * Every message on the bus, one zod schema each. Orchestrator and agents import these and
 * nothing else to talk to each other; a message is `unknown` until one of these parses it.
 *
 * Commands are imperative (`plan.request`), facts are past tense (`plan.proposed`).
 */
import { z } from 'zod';
import { GatePolicies, PrincipalFacts, RiskLevel } from '../policy.js';
import { EgressRules } from '../sandbox/egress-rules.js';

export const TaskId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'expected a task id: lower-case letters, digits and dashes');
export type TaskId = z.infer<typeof TaskId>;

export const AgentRole = z.enum(['planner', 'coder', 'reviewer', 'deployer']);
export type AgentRole = z.infer<typeof AgentRole>;

export const Stage = z.enum(['plan', 'implement', 'review', 'deploy']);
export type Stage = z.infer<typeof Stage>;

/** `command` is the gate a coder stops at when the model wants to run a command that needs a human's approval. */
/** Which role does which stage: the one table both directions are read from. */
export const STAGE_OF_ROLE = { planner: 'plan', coder: 'implement', reviewer: 'review', deployer: 'deploy' } as const satisfies Record<AgentRole, Stage>;
export const ROLE_OF_STAGE = { plan: 'planner', implement: 'coder', review: 'reviewer', deploy: 'deployer' } as const satisfies Record<Stage, AgentRole>;

export const Gate = z.enum(['plan', 'review', 'deploy', 'command']);
export type Gate = z.infer<typeof Gate>;

const count = z.number().int().nonnegative();

export const Usage = z.object({
  calls: count,
  inputTokens: count,
  cachedTokens: count,
  outputTokens: count,
  reasoningTokens: count,
  /** Milliseconds model calls waited in the rate limiter's queue (absent: none measured). */
  queueWaitMs: count.optional(),
});
export type Usage = z.infer<typeof Usage>;

/** Where a task came from when a trigger outside the CLI started it. */
export const GitHubSource = z.object({
  kind: z.literal('github'),
  owner: z.string().min(1),
  repo: z.string().min(1),
  issueNumber: z.number().int().positive(),
  /** The GitHub App installation that covers the repository, when Stagegate runs as an App. */
  installationId: z.number().int().positive().optional(),
});
export type GitHubSource = z.infer<typeof GitHubSource>;

/** Branch names are built from a safe character set only; untrusted text never reaches git as is. */
export const BranchName = z.string().regex(/^stagegate\/[a-z0-9][a-z0-9-]{0,80}$/, 'expected stagegate/<lower-case letters, digits, dashes>');

/** What `stripHidden` took out of one piece of outside text: one entry per kind that occurred. */
export const RemovedContent = z.object({
  kind: z.enum(['html-comment', 'zero-width', 'bidi-control', 'tag-character', 'hidden-element']),
  count: z.number().int().positive(),
  /** The first ~80 characters removed, invisible characters written as `\u{…}` escapes. */
  sample: z.string(),
});
export type RemovedContent = z.infer<typeof RemovedContent>;

/** A backlog item's id: short, lower-case, stable across revisions (task ids are built from it). */
export const BacklogItemId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'expected an item id: up to 40 lower-case letters, digits and dashes');

/** Caps on one coder job set for the task (by the repository's settings); a worker's own limits still hold, the lower one wins. */
export const CoderCaps = z.object({
  maxTurns: z.number().int().positive().optional(),
  /** Input plus output tokens over the job's model calls. */
  maxTokens: z.number().int().positive().optional(),
  maxCostUsd: z.number().positive().optional(),
  wallClockMs: z.number().int().positive().optional(),
});
export type CoderCaps = z.infer<typeof CoderCaps>;

/**
 * How a pull request's branch is brought up to date with its base: `merge` adds a merge commit;
 * `rebase` replays Stagegate's commits onto the base and replaces the branch (a lease-checked
 * force push), and is done only while every commit on the branch is Stagegate's: a branch with a
 * person's commit is merged instead.
 */
export const UpdateStrategy = z.enum(['merge', 'rebase']);
export type UpdateStrategy = z.infer<typeof UpdateStrategy>;

export const TaskSpec = z.object({
  repo: z.string().min(1, 'expected a repository path or git URL'),
  title: z.string().min(1, 'expected a title'),
  body: z.string().default(''),
  base: z.string().min(1).default('main'),
  /** The repository's checks; each absent one is detected from the default branch (core/repo/commands.ts). */
  testCommand: z.string().min(1).optional(),
  lintCommand: z.string().min(1).optional(),
  buildCommand: z.string().min(1).optional(),
  coderCaps: CoderCaps.optional(),
  /** Hosts the task's sandboxed commands may reach through the egress proxy (absent: no network). */
  egress: EgressRules.optional(),
  /** How the branch is updated when its base moves (absent: merge). */
  updateStrategy: UpdateStrategy.optional(),
  deployCommand: z.string().min(1).optional(),
  submittedBy: z.string().min(1),
  /** The working branch; `stagegate/<task id>` when not given. */
  branch: BranchName.optional(),
  source: GitHubSource.optional(),
  /** Hidden content taken out of the title or body at submission (absent: none found). */
  sanitized: z.array(z.object({ field: z.enum(['title', 'body']), removed: z.array(RemovedContent).min(1) })).optional(),
  /** The session and backlog item this task works on, when a session started it. */
  session: z.object({ id: TaskId, item: BacklogItemId }).optional(),
  /** How long each stage's job may take before the stage fails (absent: no limit). */
  stageTimeoutsMs: z.partialRecord(Stage, z.number().int().positive()).optional(),
});
export type TaskSpec = z.infer<typeof TaskSpec>;

/** What the planner produces; also the structured-output schema sent to the model. */
export const Plan = z.object({
  summary: z.string().min(1),
  steps: z.array(z.object({ title: z.string().min(1), detail: z.string() })).min(1),
  filesToTouch: z.array(z.string()),
  risks: z.array(z.string()),
  acceptanceChecks: z.array(z.string()),
});
export type Plan = z.infer<typeof Plan>;

/** A GitHub review comment's id (its REST `id`, GraphQL `databaseId`): what a thread reply names. */
export const ReviewCommentId = z.number().int().positive();

/** A review comment as the reviewer writes it (also part of the reviewer model's reply schema: keep every field required). */
export const ReviewComment = z.object({
  file: z.string().min(1),
  line: z.number().int().positive().nullable(),
  body: z.string().min(1),
});
export type ReviewComment = z.infer<typeof ReviewComment>;

/** A review comment the coder is given: a person's on the pull request carries its GitHub id, which the coder's answer names. */
export const CoderReviewComment = ReviewComment.extend({ commentId: ReviewCommentId.optional() });
export type CoderReviewComment = z.infer<typeof CoderReviewComment>;

/** The coder's answer to one review comment it was given with an id: what serve replies in its thread. */
export const ReviewAnswer = z.object({
  commentId: ReviewCommentId,
  status: z.enum(['addressed', 'declined']),
  /** Why it was declined; for an addressed comment, optionally what was done. */
  reason: z.string(),
});
export type ReviewAnswer = z.infer<typeof ReviewAnswer>;

/**
 * What the reviewer produces. The model's reply schema (`agents/reviewer/output.ts`) requires
 * `risk`; on the bus it is optional, and auto-approval treats a verdict without one as high risk.
 */
export const Verdict = z.object({
  decision: z.enum(['approve', 'request_changes']),
  summary: z.string().min(1),
  comments: z.array(ReviewComment),
  risk: RiskLevel.optional(),
});
export type Verdict = z.infer<typeof Verdict>;

export const BacklogItem = z.object({
  id: BacklogItemId,
  title: z.string().min(1),
  /** What the task is to do, as its issue body would say it. */
  body: z.string(),
  /** Items that must be done before this one starts. */
  dependsOn: z.array(BacklogItemId),
});
export type BacklogItem = z.infer<typeof BacklogItem>;

/**
 * What the planner makes of a session's goal; also the structured-output schema sent to the
 * model. Ids are unique, dependencies name items of the same backlog (`done` may add the ids of
 * items finished earlier) and never form a cycle.
 */
export const Backlog = z.object({
  summary: z.string().min(1),
  items: z.array(BacklogItem).min(1).max(50),
});
export type Backlog = z.infer<typeof Backlog>;

/** Why a backlog cannot be run, in words the planner is shown on its repair round; undefined when it can. */
export function backlogProblem(backlog: Backlog, done: ReadonlySet<string> = new Set()): string | undefined {
  const ids = new Set<string>();
  for (const item of backlog.items) {
    if (ids.has(item.id)) return `item id '${item.id}' is used twice`;
    ids.add(item.id);
  }
  for (const item of backlog.items) {
    const unknown = item.dependsOn.find((d) => !ids.has(d) && !done.has(d));
    if (unknown !== undefined) return `item '${item.id}' depends on '${unknown}', which is not in the backlog`;
  }
  const visiting = new Set<string>();
  const settled = new Set<string>();
  const byId = new Map(backlog.items.map((i) => [i.id, i]));
  const cycleFrom = (id: string): string | undefined => {
    if (settled.has(id) || !byId.has(id)) return undefined;
    if (visiting.has(id)) return id;
    visiting.add(id);
    for (const dep of byId.get(id)?.dependsOn ?? []) {
      const found = cycleFrom(dep);
      if (found !== undefined) return found;
    }
    visiting.delete(id);
    settled.add(id);
    return undefined;
  };
  for (const item of backlog.items) {
    const cycle = cycleFrom(item.id);
    if (cycle !== undefined) return `the dependencies of '${cycle}' form a cycle`;
  }
  return undefined;
}

export const SecuritySeverity = z.enum(['low', 'medium', 'high', 'critical']);
export type SecuritySeverity = z.infer<typeof SecuritySeverity>;

/** Severities that block the deploy gate: after one coder round, only the security group can override them. */
export const BLOCKING_SEVERITIES: readonly SecuritySeverity[] = ['high', 'critical'];

/**
 * One finding of the security review. `model` findings are the reviewer model's (with the
 * security brief); `check` findings come from the deterministic checks on the change.
 */
export const SecurityFinding = z.object({
  severity: SecuritySeverity,
  category: z.string().min(1),
  file: z.string().min(1),
  line: z.number().int().positive().nullable(),
  description: z.string().min(1),
  suggestedFix: z.string(),
  source: z.enum(['model', 'check']),
});
export type SecurityFinding = z.infer<typeof SecurityFinding>;

export const SecurityReview = z.object({
  /** The model's summary of the security review. */
  summary: z.string(),
  findings: z.array(SecurityFinding),
});
export type SecurityReview = z.infer<typeof SecurityReview>;

export function isBlockingFinding(finding: Pick<SecurityFinding, 'severity'>): boolean {
  return BLOCKING_SEVERITIES.includes(finding.severity);
}

/** A git commit id, or a prefix of one of at least 7 hex digits, in lower case. */
export const CommitSha = z.string().regex(/^[0-9a-f]{7,64}$/, 'expected a commit sha (7 to 64 lower-case hex digits)');

/** A commit on a task's branch that Stagegate did not make (a person pushed it): kept, and reviewed with the rest. */
export const ForeignCommit = z.object({
  sha: CommitSha,
  /** The commit's author as git records it: `Name <email>`. */
  author: z.string().min(1),
  subject: z.string(),
});
export type ForeignCommit = z.infer<typeof ForeignCommit>;

/**
 * An implement job that brings the branch up to date with its base: the coder merges the base
 * into the branch, or rebases the branch onto it (`UpdateStrategy`), and resolves any conflicts;
 * then the work is reviewed again.
 */
export const BranchUpdate = z.object({
  /** The base branch's head the update was asked for; the coder merges whatever the base holds when it runs. */
  baseSha: CommitSha,
  /** GitHub said the merge conflicts (`mergeable_state: dirty`); false: the branch is only behind. */
  conflicts: z.boolean(),
  /** Absent: merge. The git gateway lets this task's branch be replaced only during a rebase update. */
  strategy: UpdateStrategy.optional(),
});
export type BranchUpdate = z.infer<typeof BranchUpdate>;

const envelope = {
  taskId: TaskId,
  msgId: z.string().min(1),
  sentAt: z.iso.datetime(),
};

// ---- jobs: orchestrator → agents (subject jobs.<role>) ----

const jobEnvelope = { ...envelope, task: TaskSpec, attempt: z.number().int().positive() };

export const PlanRequest = z.object({
  type: z.literal('plan.request'),
  ...jobEnvelope,
  feedback: z.array(z.string()),
});
export type PlanRequest = z.infer<typeof PlanRequest>;

export const ImplementRequest = z.object({
  type: z.literal('implement.request'),
  ...jobEnvelope,
  plan: Plan,
  branch: z.string().min(1),
  round: z.number().int().positive(),
  reviewComments: z.array(CoderReviewComment),
  feedback: z.array(z.string()),
  /** Commands a human approved at the command gate for this task; the coder may run them. */
  approvedCommands: z.array(z.string()).default([]),
  /** Present: the job updates the branch from the base instead of working on the plan. */
  update: BranchUpdate.optional(),
});
export type ImplementRequest = z.infer<typeof ImplementRequest>;

export const ReviewRequest = z.object({
  type: z.literal('review.request'),
  ...jobEnvelope,
  plan: Plan,
  branch: z.string().min(1),
  commit: z.string().min(1),
  round: z.number().int().positive(),
  summary: z.string(),
});
export type ReviewRequest = z.infer<typeof ReviewRequest>;

export const DeployRequest = z.object({
  type: z.literal('deploy.request'),
  ...jobEnvelope,
  branch: z.string().min(1),
  commit: z.string().min(1),
});
export type DeployRequest = z.infer<typeof DeployRequest>;

/** One backlog item as the planner is shown it when revising: where it stands and how it ended. */
export const BacklogItemStatus = BacklogItem.extend({
  status: z.enum(['pending', 'running', 'done', 'failed', 'dropped']),
  attempts: z.number().int().nonnegative(),
  outcome: z.string().optional(),
});
export type BacklogItemStatus = z.infer<typeof BacklogItemStatus>;

/**
 * A session's goal to turn into a backlog, or (with `current`) its backlog to revise after an
 * outcome. `taskId` is the session's id: the job belongs to the session, and its result goes
 * to the session's inbox.
 */
export const BacklogRequest = z.object({
  type: z.literal('backlog.request'),
  ...envelope,
  attempt: z.number().int().positive(),
  repo: z.string().min(1),
  base: z.string().min(1),
  goal: z.string().min(1),
  /** The revision this job makes: 1 for the first backlog. */
  revision: z.number().int().positive(),
  current: z.array(BacklogItemStatus),
  /** What happened that calls for the revision (absent for the first backlog). */
  reason: z.string().optional(),
});
export type BacklogRequest = z.infer<typeof BacklogRequest>;

export const Job = z.discriminatedUnion('type', [PlanRequest, ImplementRequest, ReviewRequest, DeployRequest, BacklogRequest]);
export type Job = z.infer<typeof Job>;

/** Which role runs each kind of job. */
export const ROLE_OF_JOB = {
  'plan.request': 'planner',
  'backlog.request': 'planner',
  'implement.request': 'coder',
  'review.request': 'reviewer',
  'deploy.request': 'deployer',
} as const satisfies Record<Job['type'], AgentRole>;

export const JOB_TYPE_BY_ROLE = {
  planner: 'plan.request',
  coder: 'implement.request',
  reviewer: 'review.request',
  deployer: 'deploy.request',
} as const satisfies Record<AgentRole, Job['type']>;

// ---- results: agents → orchestrator (subject inbox.<taskId>) ----

/** The change from the base branch to the commit (`git diff --numstat origin/<base>...<commit>`): facts gate policies read. */
const changeFacts = {
  changedFiles: z.array(z.string()).optional(),
  /** Added plus deleted lines (binary files count 0). */
  linesChanged: z.number().int().nonnegative().optional(),
};

const resultEnvelope = {
  ...envelope,
  jobId: z.string().min(1),
  usage: Usage,
  /** The model `usage` was spent on, as the worker's model client named it: what the orchestrator prices it with. */
  model: z.string().min(1).optional(),
};

export const PlanProposed = z.object({ type: z.literal('plan.proposed'), ...resultEnvelope, plan: Plan });
export type PlanProposed = z.infer<typeof PlanProposed>;

/** The planner's answer to a backlog request; it goes to the session's inbox. */
export const BacklogProposed = z.object({ type: z.literal('backlog.proposed'), ...resultEnvelope, backlog: Backlog });
export type BacklogProposed = z.infer<typeof BacklogProposed>;

export const CodeCommitted = z.object({
  type: z.literal('code.committed'),
  ...resultEnvelope,
  branch: z.string().min(1),
  commit: z.string().min(1),
  summary: z.string(),
  attempts: z.number().int().positive(),
  ...changeFacts,
  /** Commits on the branch (from the base to the commit) that Stagegate did not make: kept, never overwritten. */
  foreignCommits: z.array(ForeignCommit).optional(),
  /** One per review comment of the job that had an id (absent when it had none). */
  answers: z.array(ReviewAnswer).optional(),
});
export type CodeCommitted = z.infer<typeof CodeCommitted>;

const reviewResult = {
  ...resultEnvelope,
  verdict: Verdict,
  testsPassed: z.boolean(),
  ...changeFacts,
  /** Absent from a reviewer that does no security review: the task then has no findings. */
  security: SecurityReview.optional(),
};
export const ReviewApproved = z.object({ type: z.literal('review.approved'), ...reviewResult });
export type ReviewApproved = z.infer<typeof ReviewApproved>;
export const ReviewChangesRequested = z.object({ type: z.literal('review.changes_requested'), ...reviewResult });
export type ReviewChangesRequested = z.infer<typeof ReviewChangesRequested>;

export const DeploySucceeded = z.object({
  type: z.literal('deploy.succeeded'),
  ...resultEnvelope,
  commit: z.string().min(1),
  target: z.string().min(1),
});
export type DeploySucceeded = z.infer<typeof DeploySucceeded>;

/**
 * The coder stopped because the model wants a command that needs a human's approval. Work so
 * far is committed on the branch (when there is any); the task waits at the command gate.
 */
export const CommandApprovalRequested = z.object({
  type: z.literal('command.approval_requested'),
  ...resultEnvelope,
  command: z.string().min(1),
  /** The requireApproval pattern it matched. */
  pattern: z.string(),
  branch: z.string().min(1),
  commit: z.string().nullable(),
  /** What the coder had done and meant to do next, for the person deciding and the resumed job. */
  notes: z.string(),
});
export type CommandApprovalRequested = z.infer<typeof CommandApprovalRequested>;

export const JobFailed = z.object({
  type: z.literal('job.failed'),
  ...resultEnvelope,
  stage: Stage,
  reason: z.string().min(1),
});
export type JobFailed = z.infer<typeof JobFailed>;

// ---- commands: people and triggers → orchestrator (subject inbox.<taskId>) ----

/**
 * How a task with a pull request treats its CI: after each review it waits for the checks on
 * the reviewed commit, and a failure goes back to the coder, at most `maxFixAttempts` times.
 */
export const CiPolicy = z.object({
  maxFixAttempts: z.number().int().nonnegative().default(3),
  /** When the same checks fail on the base branch too: wait for it to be fixed, or go on to the deploy gate. */
  onRedBase: z.enum(['wait', 'proceed']).default('wait'),
});
export type CiPolicy = z.infer<typeof CiPolicy>;

export const TaskSubmit = z.object({
  type: z.literal('task.submit'),
  ...envelope,
  spec: TaskSpec,
  policies: GatePolicies,
  maxReviewRounds: z.number().int().nonnegative(),
  /** Absent: the task does not wait for CI (it has no pull request whose checks could be read). */
  ci: CiPolicy.optional(),
  /** Coder rounds people's reviews of the pull request may start; absent: the channel's own limit. */
  maxReviewerRounds: z.number().int().nonnegative().optional(),
});
export type TaskSubmit = z.infer<typeof TaskSubmit>;

export const DecisionChannel = z.enum(['cli', 'api', 'github', 'slack', 'policy']);
export type DecisionChannel = z.infer<typeof DecisionChannel>;

export const GateDecide = z.object({
  type: z.literal('gate.decide'),
  ...envelope,
  gate: Gate,
  decision: z.enum(['approve', 'reject']),
  by: z.string().min(1),
  via: DecisionChannel,
  comment: z.string().optional(),
  /** What the channel verified about the decider (GitHub teams and permission, Slack groups); policies match on it. */
  principal: PrincipalFacts.optional(),
  /** The gate visit the decider saw; a decision for an earlier visit never counts toward a later one. */
  visit: z.number().int().positive().optional(),
  /**
   * The commit the decider approved (full, or a prefix of at least 7 hex digits): at the deploy
   * gate it must be the branch's head. Without it the orchestrator records the head it knows.
   */
  sha: CommitSha.optional(),
});
export type GateDecide = z.infer<typeof GateDecide>;

export const GateTimerKind = z.enum(['remind', 'expire']);
export type GateTimerKind = z.infer<typeof GateTimerKind>;

/** A durable gate timer: the value kept in the timers bucket until it fires or the gate is left. */
export const GateTimer = z.object({
  taskId: TaskId,
  gate: Gate,
  /** The visit to the gate it belongs to; a timer for an earlier visit is ignored. */
  visit: z.number().int().positive(),
  kind: GateTimerKind,
  fireAt: z.iso.datetime(),
});
export type GateTimer = z.infer<typeof GateTimer>;

/**
 * Any other durable timer: a message to publish when it falls due (a session's deadline and
 * digests, a stage's timeout). It is published as written, `sentAt` set to when it fired and
 * its `msgId` as the publish's dedupe id, so every scheduler that fires it sends the same one.
 */
export const ScheduledMessage = z.object({
  subject: z.string().min(1),
  fireAt: z.iso.datetime(),
  message: z.looseObject({ msgId: z.string().min(1) }),
});
export type ScheduledMessage = z.infer<typeof ScheduledMessage>;

/** What the timers bucket holds. */
export const DurableTimer = z.union([GateTimer, ScheduledMessage]);
export type DurableTimer = z.infer<typeof DurableTimer>;

/** A gate timer fell due; `sentAt` is when it was fired, never before `fireAt`. */
export const GateTimerFired = z.object({
  type: z.literal('gate.timer_fired'),
  ...envelope,
  gate: Gate,
  visit: z.number().int().positive(),
  kind: GateTimerKind,
  fireAt: z.iso.datetime(),
});
export type GateTimerFired = z.infer<typeof GateTimerFired>;

export const TaskCancel = z.object({
  type: z.literal('task.cancel'),
  ...envelope,
  by: z.string().min(1),
  reason: z.string().min(1),
});
export type TaskCancel = z.infer<typeof TaskCancel>;

export const TaskRetry = z.object({ type: z.literal('task.retry'), ...envelope, by: z.string().min(1) });
export type TaskRetry = z.infer<typeof TaskRetry>;

/**
 * A person asked for changes in a review of the task's pull request (GitHub's
 * `pull_request_review` submitted with `changes_requested`, from someone with the command
 * permission). At the review or deploy gate it sends the work back to the coder with the
 * review's comments; elsewhere it changes nothing.
 */
export const HumanChangesRequested = z.object({
  type: z.literal('review.human_changes_requested'),
  ...envelope,
  /** `github:<login>`. */
  by: z.string().min(1),
  /** The review's own text (may be empty when it only has line comments). */
  summary: z.string(),
  comments: z.array(CoderReviewComment),
  url: z.string().optional(),
  /**
   * Coder rounds people's reviews may start on this task (the channel's configured loop
   * breaker); once used, the task stays at its gate for a person to decide. Absent: no limit.
   */
  maxReviewerRounds: z.number().int().nonnegative().optional(),
});
export type HumanChangesRequested = z.infer<typeof HumanChangesRequested>;

/** One failed check, as the coder is told about it. */
export const CheckFailure = z.object({
  name: z.string().min(1),
  url: z.string().optional(),
  /** The check's output, its failure annotations and, for GitHub Actions, the tail of the job's log: trimmed. */
  details: z.string(),
  /** The same check failing the same way gets the same signature: two in a row stop the loop. */
  signature: z.string().min(1),
});
export type CheckFailure = z.infer<typeof CheckFailure>;

/**
 * The checks on a task's commit have all finished (serve reads them on each check webhook, and
 * polls while a task waits). `red` names each failure; `baseRed` says the same checks fail on
 * the base branch's head too, so the change is not what broke them.
 */
export const ChecksReported = z.object({
  type: z.literal('checks.reported'),
  ...envelope,
  commit: z.string().min(1),
  verdict: z.enum(['green', 'red']),
  failures: z.array(CheckFailure),
  baseRed: z.boolean(),
  /** What was read, in a line: `ci success, lint success` or `no checks reported within 2 min`. */
  summary: z.string(),
});
export type ChecksReported = z.infer<typeof ChecksReported>;

/**
 * The task's branch points at a new commit: a push to its pull request (GitHub's
 * `pull_request.synchronize`), by a person or by the coder. Approvals at the deploy gate given
 * for an earlier head no longer count; a head the task already knows changes nothing.
 */
export const BranchMoved = z.object({
  type: z.literal('branch.moved'),
  ...envelope,
  branch: z.string().min(1),
  /** The branch's head now. */
  sha: CommitSha,
  /** Where the push moved the branch from, as the channel saw it. */
  before: CommitSha.optional(),
  /** Who pushed, as the channel names them (`github:<login>`). */
  by: z.string().min(1).optional(),
});
export type BranchMoved = z.infer<typeof BranchMoved>;

/**
 * The task's pull request can no longer merge cleanly into its base (`dirty`), or lags behind it
 * where the repository wants branches up to date (`behind`): serve reads it from GitHub when the
 * base or the pull request moves, and when the task starts to wait at a gate or for checks. It
 * is about the head it names: a report on an earlier head changes nothing.
 */
export const BaseMoved = z.object({
  type: z.literal('base.moved'),
  ...envelope,
  /** The pull request's head GitHub computed the state for. */
  head: CommitSha,
  /** The base branch's head then. */
  baseSha: CommitSha,
  mergeableState: z.enum(['dirty', 'behind']),
});
export type BaseMoved = z.infer<typeof BaseMoved>;

const AGENT_RESULTS = [
  PlanProposed,
  CodeCommitted,
  ReviewApproved,
  ReviewChangesRequested,
  DeploySucceeded,
  CommandApprovalRequested,
  JobFailed,
] as const;

export const AgentResult = z.discriminatedUnion('type', AGENT_RESULTS);
export type AgentResult = z.infer<typeof AgentResult>;

export const InboxMessage = z.discriminatedUnion('type', [...AGENT_RESULTS, TaskSubmit, GateDecide, GateTimerFired, TaskCancel, TaskRetry, HumanChangesRequested, BranchMoved, ChecksReported, BaseMoved]);
export type InboxMessage = z.infer<typeof InboxMessage>;

// ---- the task log: what `stagegate logs` reads (subject log.<taskId>.<kind>) ----

export const AgentProgress = z.object({
  type: z.literal('agent.progress'),
  ...envelope,
  role: AgentRole,
  jobId: z.string().min(1),
  message: z.string(),
  usage: Usage.optional(),
});
export type AgentProgress = z.infer<typeof AgentProgress>;

/** A gate's policy state at its current visit, as `status` and the channels show it. */
export const GateStatus = z.object({
  gate: Gate,
  visit: z.number().int().positive(),
  approvals: z.number().int().nonnegative(),
  required: z.number().int().positive(),
  /** The principals who may decide now (the escalation group once escalated). */
  approvers: z.array(z.string()),
  escalated: z.boolean(),
  /** What the gate still needs, in words. */
  missing: z.string().optional(),
  /** Why the gate's auto-approval does not apply to this change (a protected path, security findings). */
  autoApproveRefused: z.string().optional(),
  /** High-severity security findings hold the gate: only the security group may pass it, with a reason. */
  securityBlock: z.object({ findings: z.number().int().positive() }).optional(),
  timers: z.array(z.object({ kind: GateTimerKind, fireAt: z.string(), firedAt: z.string().nullable() })),
});
export type GateStatus = z.infer<typeof GateStatus>;

/** One applied inbox message and where it left the task: the audit trail. */
export const TaskEventRecorded = z.object({
  type: z.literal('task.event'),
  ...envelope,
  event: InboxMessage,
  state: z.string(),
  accepted: z.boolean(),
  note: z.string().optional(),
  /** Gates this event's step passed on their own, by the auto-approve policy. */
  autoApproved: z.array(Gate).optional(),
  /** Where the gate the task waits at stands after this event: what channels re-post and mention. */
  gate: GateStatus.optional(),
  /** This decision counted as an override of blocking security findings: who, why, and what. */
  securityOverride: z
    .object({ by: z.string(), reason: z.string(), findings: z.array(SecurityFinding) })
    .optional(),
});
export type TaskEventRecorded = z.infer<typeof TaskEventRecorded>;

export const TaskLogEntry = z.discriminatedUnion('type', [AgentProgress, TaskEventRecorded]);
export type TaskLogEntry = z.infer<typeof TaskLogEntry>;
