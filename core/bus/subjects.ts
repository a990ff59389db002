/** Every stream, subject, consumer and bucket name. A subject literal anywhere else is a bug. */
import type { AgentRole, Gate, GateTimerKind, TaskId } from './messages.js';

export const STREAMS = {
  /** Work queue of agent jobs, one filtered consumer per role. */
  jobs: 'SG_JOBS',
  /** Work queue of everything the orchestrator acts on: results, decisions, submissions. */
  inbox: 'SG_INBOX',
  /** Per-task audit trail and agent progress: what `stagegate logs` reads. */
  log: 'SG_LOG',
  /** Work queue of what sessions act on: their commands, backlog results and task updates. */
  sessions: 'SG_SESSIONS',
  /** Messages no consumer could handle, kept with why (`dead-letters.ts`). */
  deadLetters: 'SG_DEAD_LETTERS',
} as const;

export const TASKS_BUCKET = 'sg-tasks';

/** Durable gate timers, one key per timer: `<taskId>.<gate>.<visit>.<remind|expire>`. */
export const TIMERS_BUCKET = 'sg-timers';

/**
 * Abuse and cost limits (orchestrator/limits): the tasks each repository has running
 * (`running.<repo>`), kept until they end, so no age limit on this one.
 */
export const LIMITS_BUCKET = 'sg-limits';

/**
 * What the limits count over time, each entry dropped a while after its window or day is over:
 * trigger counts (`triggers.<user|repo>.<who>.<window start>`), the spend of each agent result
 * (`spend.<day>.<org>.<repo>.<result>`) and the refusals already told on an issue.
 */
export const USAGE_BUCKET = 'sg-usage';

export function timerKey(timer: { taskId: TaskId; gate: Gate; visit: number; kind: GateTimerKind }): string {
  return `${timer.taskId}.${timer.gate}.${timer.visit}.${timer.kind}`;
}

export const ORCHESTRATOR_CONSUMER = 'orchestrator';

/** Sessions: their inbox consumer (every orchestrator shares it) and their records. */
export const SESSION_CONSUMER = 'orchestrator-sessions';
export const SESSIONS_BUCKET = 'sg-sessions';

/** The Slack channel's durable consumer on SG_LOG (applied events), and its bucket of posted messages. */
export const SLACK_CHANNEL_CONSUMER = 'channel-slack';
export const SLACK_CHANNEL_BUCKET = 'sg-channel-slack';

/**
 * The GitHub channel: its durable consumer on SG_LOG, the status comment of each task
 * (`sg-channel-github`), which task an issue, branch or pull request belongs to
 * (`sg-github-issues`) and the webhook deliveries already seen (`sg-github-deliveries`).
 */
export const GITHUB_CHANNEL_CONSUMER = 'channel-github';
export const GITHUB_CHANNEL_BUCKET = 'sg-channel-github';
export const GITHUB_ISSUES_BUCKET = 'sg-github-issues';
export const GITHUB_DELIVERIES_BUCKET = 'sg-github-deliveries';
/** Pull request review comments sent to a task's coder, by comment id, and whether their thread was answered. */
export const GITHUB_REVIEW_THREADS_BUCKET = 'sg-github-review-threads';

/** The pull request channel's durable consumer on SG_LOG: opens and updates each task's pull request and posts its reviews. */
export const GITHUB_PR_CONSUMER = 'channel-github-pr';

/** Session digests: the consumer that posts them to GitHub and Slack, and its record of what it posted. */
export const SESSION_DIGEST_CONSUMER = 'channel-session-digests';
export const SESSION_DIGEST_BUCKET = 'sg-channel-digests';

export function workerConsumer(role: AgentRole): string {
  return `worker-${role}`;
}

export const subjects = {
  allJobs: 'sg.jobs.>',
  job: (role: AgentRole) => `sg.jobs.${role}`,
  allInbox: 'sg.inbox.>',
  inbox: (taskId: TaskId) => `sg.inbox.${taskId}`,
  allLogs: 'sg.log.>',
  taskLog: (taskId: TaskId) => `sg.log.${taskId}.>`,
  taskEvent: (taskId: TaskId) => `sg.log.${taskId}.event`,
  /** Every task's applied events, without the progress chatter: what channels follow. */
  allTaskEvents: 'sg.log.*.event',
  progress: (taskId: TaskId) => `sg.log.${taskId}.progress`,
  allSessions: 'sg.session.>',
  /** A session's inbox: its commands, its backlog results and its tasks' updates. */
  session: (sessionId: TaskId) => `sg.session.${sessionId}`,
  /** A session's applied events (its audit trail). */
  sessionEvent: (sessionId: TaskId) => `sg.log.${sessionId}.session`,
  /** A session's digests and reports: what the channels post. */
  sessionDigest: (sessionId: TaskId) => `sg.log.${sessionId}.digest`,
  allSessionDigests: 'sg.log.*.digest',
  allDeadLetters: 'sg.dead.>',
  /** Where a message given up on is kept: `sg.inbox.t-1` → `sg.dead.inbox.t-1`. */
  deadLetter: (subject: string) => `sg.dead.${subject.replace(/^sg\./, '')}`,
} as const;
