/**
 * What people and triggers do to tasks: submit, read, decide at a gate, cancel, retry, follow
 * the log. The CLI uses it, and so will every other channel, so they all take one path.
 * Decisions are checked against the stored task first (unknown task, not at that gate), then
 * published to the inbox; the orchestrator's answer is read back from the task's log.
 */
import { randomUUID } from 'node:crypto';
import { jetstream, DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  TaskLogEntry,
  type DecisionChannel,
  type Gate,
  type InboxMessage,
  type TaskEventRecorded,
  type TaskSpec,
} from '../core/bus/messages.js';
import { STREAMS, subjects } from '../core/bus/subjects.js';
import { openTaskBucket } from '../core/bus/topology.js';
import { StagegateError } from '../core/errors.js';
import { parseJsonAt } from '../core/parse.js';
import type { GatePolicies } from '../core/policy.js';
import { gateAt, type TaskRecord } from '../core/task-record.js';
import { loadTask } from './task-store.js';

export interface TaskClient {
  submit(input: { spec: TaskSpec; policies: GatePolicies; maxReviewRounds: number; taskId?: string }): Promise<string>;
  get(taskId: string): Promise<TaskRecord>;
  list(): Promise<TaskRecord[]>;
  decide(input: DecisionInput): Promise<DecisionAnswer>;
  cancel(taskId: string, by: string, reason: string): Promise<void>;
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
  /** How long to wait for the orchestrator's answer. */
  answerTimeoutMs?: number;
}

export type DecisionAnswer =
  | { status: 'applied'; state: string; counted: boolean; note?: string }
  | { status: 'queued' };

export async function createTaskClient(nc: NatsConnection, now: () => Date = () => new Date()): Promise<TaskClient> {
  const js = jetstream(nc);
  const kv = await openTaskBucket(nc);
  const publishInbox = (message: InboxMessage) =>
    js.publish(subjects.inbox(message.taskId), JSON.stringify(message), { msgID: message.msgId });

  return {
    async submit({ spec, policies, maxReviewRounds, taskId = newTaskId() }) {
      await publishInbox({ type: 'task.submit', taskId, msgId: `${taskId}:submit`, sentAt: now().toISOString(), spec, policies, maxReviewRounds });
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
      const waitingAt = gateAt(record.state);
      if (waitingAt === undefined || (input.gate !== undefined && input.gate !== waitingAt)) {
        const where = waitingAt === undefined ? 'not waiting at a gate' : `waiting at the ${waitingAt} gate`;
        throw new StagegateError(
          'TASK_NOT_AT_GATE',
          `task ${input.taskId} is ${record.state}, ${where}${input.gate === undefined ? '' : ` (asked: ${input.gate} gate)`}; nothing changed`,
          { taskId: input.taskId },
        );
      }
      const msgId = `${input.taskId}:decision:${randomUUID()}`;
      const answer = awaitAudit(nc, input.taskId, `${msgId}:audit`, input.answerTimeoutMs ?? 5_000);
      await publishInbox({
        type: 'gate.decide',
        taskId: input.taskId,
        msgId,
        sentAt: now().toISOString(),
        gate: waitingAt,
        decision: input.decision,
        by: input.by,
        via: input.via,
        ...(input.comment === undefined ? {} : { comment: input.comment }),
      });
      const audit = await answer;
      if (audit === undefined) return { status: 'queued' };
      return { status: 'applied', state: audit.state, counted: audit.accepted, ...(audit.note === undefined ? {} : { note: audit.note }) };
    },
    async cancel(taskId, by, reason) {
      await requireTask(kv, taskId);
      await publishInbox({ type: 'task.cancel', taskId, msgId: `${taskId}:cancel:${randomUUID()}`, sentAt: now().toISOString(), by, reason });
    },
    async retry(taskId, by) {
      await requireTask(kv, taskId);
      await publishInbox({ type: 'task.retry', taskId, msgId: `${taskId}:retry:${randomUUID()}`, sentAt: now().toISOString(), by });
    },
    logs: (taskId, options = {}) => readLog(js, taskId, options),
  };
}

export function newTaskId(): string {
  return `t-${randomUUID().replaceAll('-', '').slice(0, 10)}`;
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
