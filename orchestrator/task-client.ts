/**
 * What people and triggers do to tasks: submit, read, decide at a gate, cancel, retry, follow
 * the log. The CLI, the HTTP API and the Slack channel all use it, so they take one path.
 * Decisions are checked against the stored task first (unknown task, not at that gate, that
 * visit already decided), then published to the inbox; the orchestrator's answer is read back
 * from the task's log. A decision that lost a race to another one (a double click, two
 * channels at once) is answered with who decided first: `GateAlreadyDecided`. Starting work
 * (a submission, a retry of a failed task) passes the abuse and cost limits first
 * (`limits/limit-gate.ts`): over one, nothing is sent and `LimitReached` says which.
 */
import { randomUUID } from 'node:crypto';
import { jetstream, DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  TaskLogEntry,
  type CiPolicy,
  type DecisionChannel,
  type Gate,
  type InboxMessage,
  type TaskEventRecorded,
  type TaskSpec,
} from '../core/bus/messages.js';
import { STREAMS, subjects } from '../core/bus/subjects.js';
import { openTaskBucket } from '../core/bus/topology.js';
import { LimitsConfig } from '../core/config.js';
import { StagegateError } from '../core/errors.js';
import { stripHidden } from '../core/model/strip-hidden.js';
import { parseJsonAt } from '../core/parse.js';
import type { GatePolicies, PrincipalFacts } from '../core/policy.js';
import { gateAt, type TaskRecord } from '../core/task-record.js';
import { GateAlreadyDecided, decidingDecision, lastDecidedGate } from './gate-outcome.js';
import { countedApprovals } from './gate-policy.js';
import { openLimitGate, type StartRequest } from './limits/limit-gate.js';
import { loadTask } from './task-store.js';

export { GateAlreadyDecided } from './gate-outcome.js';

export interface TaskClient {
  /** Throws `LimitReached` when a limit refuses the start: then nothing is sent. */
  submit(input: { spec: TaskSpec; policies: GatePolicies; maxReviewRounds: number; ci?: CiPolicy; maxReviewerRounds?: number; taskId?: string }): Promise<string>;
  get(taskId: string): Promise<TaskRecord>;
  list(): Promise<TaskRecord[]>;
  decide(input: DecisionInput): Promise<DecisionAnswer>;
  cancel(taskId: string, by: string, reason: string): Promise<void>;
  /** Throws `LimitReached` when a limit refuses to start the failed task again. */
  retry(taskId: string, by: string): Promise<void>;
  /** Entries of the task's log in order; with `follow`, keeps going until the signal aborts. */
  logs(taskId: string, options?: { follow?: boolean; signal?: AbortSignal }): AsyncIterable<TaskLogEntry>;
}

export interface DecisionInput {
  taskId: string;
  decision: 'approve' | 'reject';
  by: string;
  via: DecisionChannel;
  comment?: string;
  /** Defaults to the gate the task is waiting at. */
  gate?: Gate;
  /**
   * The visit to the gate the decision is meant for (a Slack button carries it): a decision
   * for a visit that is over is refused with `GateAlreadyDecided`, never applied to a later visit.
   */
  visit?: number;
  /** What the channel verified about `by` (Slack user groups, GitHub teams); policies match on it. */
  principal?: PrincipalFacts;
  /** The commit approved; at the deploy gate it must be the branch's head (absent: the head the orchestrator knows). */
  sha?: string;
  /** How long to wait for the orchestrator's answer. */
  answerTimeoutMs?: number;
}

export type DecisionAnswer =
  | {
      status: 'applied';
      state: string;
      counted: boolean;
      note?: string;
      /** Why a decision was not counted: the policy does not allow `by`, or `by` already approved this visit. */
      refusal?: 'not-allowed' | 'repeated';
      /** The gate visit the decision was made at. */
      gate: Gate;
      visit: number;
    }
  | { status: 'queued'; gate: Gate; visit: number };

/**
 * The spec as stored: hidden content (HTML comments, zero-width and bidi characters, hidden
 * elements) taken out of the title and body, and what was taken out recorded beside them.
 */
export function sanitizeSpec(spec: TaskSpec): TaskSpec {
  const title = stripHidden(spec.title);
  const body = stripHidden(spec.body);
  const sanitized = [
    ...(spec.sanitized ?? []),
    ...(title.removed.length > 0 ? [{ field: 'title' as const, removed: title.removed }] : []),
    ...(body.removed.length > 0 ? [{ field: 'body' as const, removed: body.removed }] : []),
  ];
  return {
    ...spec,
    title: title.text.trim() === '' ? '(untitled)' : title.text,
    body: body.text,
    ...(sanitized.length > 0 ? { sanitized } : {}),
  };
}

export interface TaskClientOptions {
  /** Stamps what the client sends and dates the limits' windows; injected so tests can control time. */
  now?: () => Date;
  /** Checked before a task starts (submit, retry); absent: no limits. */
  limits?: LimitsConfig;
}

export async function createTaskClient(nc: NatsConnection, options: TaskClientOptions = {}): Promise<TaskClient> {
  const now = options.now ?? (() => new Date());
  const js = jetstream(nc);
  const kv = await openTaskBucket(nc);
  const gate = await openLimitGate(nc, kv, options.limits ?? LimitsConfig.parse({}), now);
  const publishInbox = (message: InboxMessage) =>
    js.publish(subjects.inbox(message.taskId), JSON.stringify(message), { msgID: message.msgId });
  /** Publishes a message that starts work once the limits have admitted it; gives its place back if it never left. */
  const start = async (request: StartRequest, message: InboxMessage) => {
    const admission = await gate.admit(request);
    try {
      await publishInbox(message);
    } catch (err) {
      await admission.release();
      throw err;
    }
  };

  return {
    async submit({ spec, policies, maxReviewRounds, ci, maxReviewerRounds, taskId = newTaskId() }) {
      const stored = sanitizeSpec(spec);
      await start(
        { taskId, user: stored.submittedBy, spec: stored },
        {
          type: 'task.submit',
          taskId,
          msgId: `${taskId}:submit`,
          sentAt: now().toISOString(),
          spec: stored,
          policies,
          maxReviewRounds,
          ...(ci === undefined ? {} : { ci }),
          ...(maxReviewerRounds === undefined ? {} : { maxReviewerRounds }),
        },
      );
      return taskId;
    },
    get: (taskId) => requireTask(kv, taskId),
    async list() {
      const records: TaskRecord[] = [];
      for await (const key of await kv.keys()) {
        const stored = await loadTask(kv, key);
        if (stored !== undefined) records.push(stored.record);
      }
      return records.sort((a, b) => a.context.createdAt.localeCompare(b.context.createdAt));
    },
    async decide(input) {
      const record = await requireTask(kv, input.taskId);
      const { gate, visit } = openGateFor(record, input);
      const msgId = `${input.taskId}:decision:${randomUUID()}`;
      const answer = awaitAudit(nc, input.taskId, `${msgId}:audit`, input.answerTimeoutMs ?? 5_000);
      await publishInbox({
        type: 'gate.decide',
        taskId: input.taskId,
        msgId,
        sentAt: now().toISOString(),
        gate,
        decision: input.decision,
        by: input.by,
        via: input.via,
        ...(input.comment === undefined ? {} : { comment: input.comment }),
        ...(input.principal === undefined ? {} : { principal: input.principal }),
        ...(input.sha === undefined ? {} : { sha: input.sha }),
        visit,
      });
      const audit = await answer;
      if (audit === undefined) return { status: 'queued', gate, visit };
      if (audit.accepted) return { status: 'applied', state: audit.state, counted: true, gate, visit };
      // Not counted: either another decision passed this visit first, or the policy refused it.
      // The audit is published after the record is committed, so this read sees the outcome.
      const after = await requireTask(kv, input.taskId);
      const decided = decidingDecision(after, gate, visit);
      if (decided !== undefined) throw new GateAlreadyDecided(input.taskId, decided);
      // An approval pinned to a head the branch has left no longer counts: giving one again is not a repeat.
      const repeated = input.decision === 'approve' && countedApprovals(after.context, gate).some((d) => d.visit === visit && d.by === input.by);
      return {
        status: 'applied',
        state: audit.state,
        counted: false,
        refusal: repeated ? 'repeated' : 'not-allowed',
        gate,
        visit,
        ...(audit.note === undefined ? {} : { note: audit.note }),
      };
    },
    async cancel(taskId, by, reason) {
      await requireTask(kv, taskId);
      await publishInbox({ type: 'task.cancel', taskId, msgId: `${taskId}:cancel:${randomUUID()}`, sentAt: now().toISOString(), by, reason });
    },
    async retry(taskId, by) {
      const record = await requireTask(kv, taskId);
      const message: InboxMessage = { type: 'task.retry', taskId, msgId: `${taskId}:retry:${randomUUID()}`, sentAt: now().toISOString(), by };
      // Only a failed task starts again; any other ignores the retry, which then counts against nothing.
      if (record.state === 'failed') await start({ taskId, user: by, spec: record.context.spec }, message);
      else await publishInbox(message);
    },
    logs: (taskId, options = {}) => readLog(js, taskId, options),
  };
}

export function newTaskId(): string {
  return `t-${randomUUID().replaceAll('-', '').slice(0, 10)}`;
}

/**
 * The gate visit a decision goes to: the one the task waits at, when it is the one asked for.
 * A visit that is over was decided by someone, and the refusal says by whom and where.
 */
function openGateFor(record: TaskRecord, input: DecisionInput): { gate: Gate; visit: number } {
  const { taskId } = input;
  const waitingAt = gateAt(record.state);
  const asked = input.gate ?? waitingAt;
  const current = waitingAt === undefined ? undefined : record.context.gateVisits[waitingAt];
  if (waitingAt !== undefined && asked === waitingAt && (input.visit === undefined || input.visit === current)) {
    return { gate: waitingAt, visit: current as number };
  }
  if (asked !== undefined) {
    const visit = input.visit ?? record.context.gateVisits[asked];
    const decided = decidingDecision(record, asked, visit);
    if (decided !== undefined) throw new GateAlreadyDecided(taskId, decided);
  } else {
    const last = lastDecidedGate(record);
    if (last !== undefined) throw new GateAlreadyDecided(taskId, last);
  }
  const where = waitingAt === undefined ? 'not waiting at a gate' : `waiting at the ${waitingAt} gate`;
  const askedWhat = input.gate === undefined ? '' : ` (asked: ${input.gate} gate${input.visit === undefined ? '' : `, visit ${input.visit}`})`;
  throw new StagegateError('TASK_NOT_AT_GATE', `task ${taskId} is ${record.state}, ${where}${askedWhat}; nothing changed`, { taskId });
}

async function requireTask(kv: KV, taskId: string): Promise<TaskRecord> {
  const stored = await loadTask(kv, taskId);
  if (stored === undefined) throw new StagegateError('TASK_UNKNOWN', `unknown task ${taskId}`, { taskId });
  return stored.record;
}

/** Subscribes before the decision is published, so the answer cannot slip past. */
function awaitAudit(nc: NatsConnection, taskId: string, auditId: string, timeoutMs: number) {
  const sub = nc.subscribe(subjects.taskEvent(taskId), { timeout: timeoutMs });
  return (async (): Promise<TaskEventRecorded | undefined> => {
    try {
      for await (const m of sub) {
        const entry = parseJsonAt(TaskLogEntry, m.string(), `log entry on ${m.subject}`, taskId);
        if (entry.type === 'task.event' && entry.msgId === auditId) return entry;
      }
    } catch {
      // The subscription timed out: the decision waits in the inbox for an orchestrator.
    } finally {
      sub.unsubscribe();
    }
    return undefined;
  })();
}

async function* readLog(
  js: JetStreamClient,
  taskId: string,
  options: { follow?: boolean; signal?: AbortSignal },
): AsyncIterable<TaskLogEntry> {
  const consumer = await js.consumers.get(STREAMS.log, {
    filter_subjects: subjects.taskLog(taskId),
    deliver_policy: DeliverPolicy.All,
  });
  const messages = await consumer.consume();
  options.signal?.addEventListener('abort', () => messages.stop(), { once: true });
  try {
    let pending = (await consumer.info(true)).num_pending;
    if (!options.follow && pending === 0) return;
    for await (const m of messages) {
      yield parseJsonAt(TaskLogEntry, m.string(), `log entry on ${m.subject}`, taskId);
      pending = m.info.pending;
      if (!options.follow && pending === 0) return;
    }
  } finally {
    messages.stop();
  }
}
