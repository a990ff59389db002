/**
 * Which Slack message shows which gate visit, one KV entry per task in `sg-channel-slack`.
 * Writes name the revision they read, so two channel processes cannot both post a message for
 * the same visit: the loser re-reads and finds the claim. This is the "look before create".
 */
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { Gate } from '../../../core/bus/messages.js';
import { SLACK_CHANNEL_BUCKET } from '../../../core/bus/subjects.js';
import { versionedKv, type Versioned } from '../../../core/bus/versioned-kv.js';

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

export type StoredMessages = Versioned<TaskSlackMessages>;

export interface MessageStore {
  load(taskId: string): Promise<StoredMessages>;
  /** Writes if the entry is still at `basedOn.revision`; throws WriteConflict otherwise. */
  save(taskId: string, value: TaskSlackMessages, basedOn: StoredMessages): Promise<StoredMessages>;
}

export async function openMessageStore(nc: NatsConnection): Promise<MessageStore> {
  const kv = await new Kvm(nc).create(SLACK_CHANNEL_BUCKET, { history: 1 });
  const entries = versionedKv(kv, TaskSlackMessages, (taskId) => `slack messages of task ${taskId}`);
  return {
    async load(taskId) {
      const { value, revision } = await entries.load(taskId);
      return { value: value ?? { messages: [] }, revision };
    },
    save: (taskId, value, basedOn) => entries.save(taskId, value, basedOn),
  };
}

export function withMessage(value: TaskSlackMessages, message: PostedGateMessage): TaskSlackMessages {
  const others = value.messages.filter((m) => m.gate !== message.gate || m.visit !== message.visit);
  return { messages: [...others, message] };
}
