/**
 * Consumes a work-queue stream with bounded concurrency while keeping the messages of one
 * record (a task, a session) in order: each record's messages form a chain, and chains run side
 * by side. Used for the task inbox and the session inbox alike.
 */
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';

export interface OrderedConsumer {
  stop(): Promise<void>;
}

export async function consumeInOrder(options: {
  consumer: Consumer;
  /** Messages handled at once. */
  limit: number;
  /** The record a message belongs to, from its subject. */
  keyOf(subject: string): string;
  handle(msg: JsMsg): Promise<void>;
  log: Logger;
}): Promise<OrderedConsumer> {
  const { limit, log } = options;
  const messages = await options.consumer.consume({ max_messages: limit });
  const inFlight = new Set<Promise<void>>();
  const chains = new Map<string, Promise<void>>();

  const loop = (async () => {
    for await (const msg of messages) {
      while (inFlight.size >= limit) await Promise.race(inFlight);
      const key = options.keyOf(msg.subject);
      const previous = chains.get(key) ?? Promise.resolve();
      // A failure here (even an ack on a closed connection) must neither stop the loop nor skip
      // the record's next messages: the unacked message comes back.
      const work = previous
        .then(() => options.handle(msg))
        .catch((err: unknown) => log.error({ subject: msg.subject, err: errorMessage(err) }, 'message not handled; it will be redelivered'));
      const tracked = work.finally(() => {
        inFlight.delete(tracked);
        if (chains.get(key) === tracked) chains.delete(key);
      });
      chains.set(key, tracked);
      inFlight.add(tracked);
    }
  })();

  return {
    async stop() {
      messages.stop();
      await loop;
      await Promise.all(inFlight);
    },
  };
}

/** `sg.<kind>.<id>`: the id a subject names. */
export function recordKeyOf(subject: string): string {
  return subject.split('.')[2] ?? subject;
}
