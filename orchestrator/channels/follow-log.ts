/**
 * A durable consumer on SG_LOG for one channel, reading the entries of one kind once, in
 * order, across restarts. A handler that fails gets the entry again after a growing delay;
 * after the last delivery the failure is logged and the entry is given up.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';
import { redeliveryDelayMs, type RetryPolicy } from '../../core/bus/retry-policy.js';
import { STREAMS } from '../../core/bus/subjects.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { parseJsonAt } from '../../core/parse.js';

const nanos = (ms: number) => ms * 1_000_000;
/** A channel's post waits on GitHub or Slack: tried a little sooner than an inbox message. */
const RETRY: RetryPolicy = { attempts: 12, firstDelayMs: 500, maxDelayMs: 30_000 };

export interface FollowLogOptions<S extends z.ZodType> {
  nc: NatsConnection;
  /** The durable consumer's name: one per channel, shared by that channel's processes. */
  consumer: string;
  filterSubject: string;
  schema: S;
  /** Entries this channel acts on; the others are acked and passed over. */
  wanted(entry: z.infer<S>): boolean;
  /** Log fields naming an entry (its task or session id and message id). */
  describe(entry: z.infer<S>): Record<string, string>;
  log: Logger;
  handle(entry: z.infer<S>): Promise<void>;
}

export interface FollowingLog {
  stop(): Promise<void>;
}

export async function followLog<S extends z.ZodType>(options: FollowLogOptions<S>): Promise<FollowingLog> {
  const { nc, consumer: name, log } = options;
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.consumers.info(STREAMS.log, name);
  } catch (err) {
    if (!(err instanceof Error && /not found/i.test(err.message))) throw err;
    await jsm.consumers.add(STREAMS.log, {
      durable_name: name,
      filter_subject: options.filterSubject,
      ack_policy: AckPolicy.Explicit,
      // From the start of the log: a channel first switched on catches up with what it missed.
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(60_000),
      max_deliver: RETRY.attempts,
    });
  }
  const messages = await (await jetstream(nc).consumers.get(STREAMS.log, name)).consume({ max_messages: 16 });
  const loop = (async () => {
    for await (const msg of messages) await handleOne(msg);
  })();
  return {
    async stop() {
      messages.stop();
      await loop;
    },
  };

  async function handleOne(msg: JsMsg) {
    let entry: z.infer<S>;
    try {
      entry = parseJsonAt(options.schema, msg.string(), `log entry on ${msg.subject}`);
    } catch (err) {
      log.warn({ subject: msg.subject, reason: errorMessage(err) }, 'malformed log entry skipped');
      msg.term();
      return;
    }
    if (!options.wanted(entry)) return msg.ack();
    try {
      await options.handle(entry);
      msg.ack();
    } catch (err) {
      const deliveries = msg.info.deliveryCount;
      const fields = { ...options.describe(entry), consumer: name, deliveries, err: errorMessage(err) };
      if (deliveries >= RETRY.attempts) {
        log.error(fields, 'channel gave up on a log entry');
        msg.term();
      } else {
        log.warn(fields, 'channel failed on a log entry; it will come again');
        msg.nak(redeliveryDelayMs(RETRY, deliveries));
      }
    }
  }
}
