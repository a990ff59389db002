/**
 * A channel's durable consumer on SG_LOG, reading every applied event (`task.event`) once,
 * in order, across restarts. A handler that fails gets the event again after a growing delay;
 * after the last delivery the failure is logged and the next event of that task repairs what
 * it can, since channels reconcile from the task record rather than from the event alone.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { TaskLogEntry, type TaskEventRecorded } from '../../core/bus/messages.js';
import { STREAMS, subjects } from '../../core/bus/subjects.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { parseJsonAt } from '../../core/parse.js';

const nanos = (ms: number) => ms * 1_000_000;
const MAX_DELIVERIES = 12;

export interface FollowEventsOptions {
  nc: NatsConnection;
  /** The durable consumer's name: one per channel, shared by that channel's processes. */
  consumer: string;
  log: Logger;
  handle(entry: TaskEventRecorded): Promise<void>;
}

export interface FollowingEvents {
  stop(): Promise<void>;
}

export async function followAppliedEvents(options: FollowEventsOptions): Promise<FollowingEvents> {
  const { nc, consumer: name, log } = options;
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.consumers.info(STREAMS.log, name);
  } catch (err) {
    if (!(err instanceof Error && /not found/i.test(err.message))) throw err;
    await jsm.consumers.add(STREAMS.log, {
      durable_name: name,
      filter_subject: subjects.allTaskEvents,
      ack_policy: AckPolicy.Explicit,
      // From the start of the log: a channel first switched on shows the gates tasks already wait at.
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(60_000),
      max_deliver: MAX_DELIVERIES,
    });
  }
  const messages = await (await jetstream(nc).consumers.get(STREAMS.log, name)).consume({ max_messages: 16 });
  const loop = (async () => {
    for await (const msg of messages) await handleOne(msg, options);
  })();
  return {
    async stop() {
      messages.stop();
      await loop;
    },
  };

  async function handleOne(msg: JsMsg, { handle }: FollowEventsOptions) {
    let entry: TaskLogEntry;
    try {
      entry = parseJsonAt(TaskLogEntry, msg.string(), `log entry on ${msg.subject}`);
    } catch (err) {
      log.warn({ subject: msg.subject, reason: errorMessage(err) }, 'malformed log entry skipped');
      msg.term();
      return;
    }
    if (entry.type !== 'task.event') return msg.ack();
    try {
      await handle(entry);
      msg.ack();
    } catch (err) {
      const deliveries = msg.info.deliveryCount;
      const fields = { taskId: entry.taskId, msgId: entry.msgId, consumer: name, deliveries, err: errorMessage(err) };
      if (deliveries >= MAX_DELIVERIES) {
        log.error(fields, 'channel gave up on an event');
        msg.term();
      } else {
        log.warn(fields, 'channel failed on an event; it will come again');
        msg.nak(Math.min(500 * 2 ** (deliveries - 1), 30_000));
      }
    }
  }
}
