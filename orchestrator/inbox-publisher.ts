/**
 * Puts a message from outside the agents (a review on GitHub, a CI report) on a task's inbox.
 * Its `msgId` is the Nats-Msg-Id, so the same delivery published twice is applied once.
 */
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { InboxMessage } from '../core/bus/messages.js';
import { subjects } from '../core/bus/subjects.js';

export type InboxPublish = (event: InboxMessage) => Promise<void>;

export function inboxPublisher(nc: NatsConnection): InboxPublish {
  const js = jetstream(nc);
  return async (event) => {
    await js.publish(subjects.inbox(event.taskId), JSON.stringify(event), { msgID: event.msgId });
  };
}
