/**
 * Which Slack message shows which gate visit, one KV entry per task in `sg-channel-slack`.
 * Writes name the revision they read, so two channel processes cannot both post a message for
 * the same visit: the loser re-reads and finds the claim. This is the "look before create".
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { Gate } from '../../../core/bus/messages.js';
import { SLACK_CHANNEL_BUCKET } from '../../../core/bus/subjects.js';
import { parseJsonAt } from '../../../core/parse.js';
import { WriteConflict } from '../../task-store.js';

export const PostedGateMessage = z.object({
  gate: Gate,
  visit: z.number().int().positive(),
  /** `posting`: claimed, chat.postMessage under way (or cut short by a crash). */
  status: z.enum(['posting', 'open', 'closed']),
  /** The channel id Slack answered with (the configured name or id while posting). */
  channel: z.string(),
  ts: z.string().nullable(),
  claimedAt: z.string(),
  /** What the open message shows (approvals, approvers), to know when it needs an update. */
  shown: z.string().optional(),
  /** Reminder events already posted for this visit, by msgId. */
  reminders: z.array(z.string()).default([]),
});
export type PostedGateMessage = z.infer<typeof PostedGateMessage>;

export const TaskSlackMessages = z.object({ messages: z.array(PostedGateMessage) });
export type TaskSlackMessages = z.infer<typeof TaskSlackMessages>;

export interface StoredMessages {
  value: TaskSlackMessages;
  /** Undefined when the task has no entry yet. */
  revision: number | undefined;
}

export interface MessageStore {
  load(taskId: string): Promise<StoredMessages>;
  /** Writes if the entry is still at `basedOn.revision`; throws WriteConflict otherwise. */
  save(taskId: string, value: TaskSlackMessages, basedOn: StoredMessages): Promise<StoredMessages>;
}

export async function openMessageStore(nc: NatsConnection): Promise<MessageStore> {
  const kv: KV = await new Kvm(nc).create(SLACK_CHANNEL_BUCKET, { history: 1 });
  return {
    async load(taskId) {
      const entry = await kv.get(taskId);
      if (entry === null || entry.operation !== 'PUT') return { value: { messages: [] }, revision: undefined };
      return { value: parseJsonAt(TaskSlackMessages, entry.string(), `slack messages of task ${taskId}`, taskId), revision: entry.revision };
    },
    async save(taskId, value, basedOn) {
      const data = JSON.stringify(value);
      try {
        const revision = basedOn.revision === undefined ? await kv.create(taskId, data) : await kv.update(taskId, data, basedOn.revision);
        return { value, revision };
      } catch (err) {
        if (err instanceof Error && /wrong last sequence|key exists/i.test(err.message)) {
          throw new WriteConflict(`slack messages of task ${taskId} were written by someone else`, { cause: err });
        }
        throw err;
      }
    },
  };
}

export function withMessage(value: TaskSlackMessages, message: PostedGateMessage): TaskSlackMessages {
  const others = value.messages.filter((m) => m.gate !== message.gate || m.visit !== message.visit);
  return { messages: [...others, message] };
}
