/**
 * Messages that cannot be handled are kept, not dropped: a malformed message, one for a task
 * that does not exist, one whose handling failed every time it was tried. Each goes to the
 * SG_DEAD_LETTERS stream as it arrived (its body untouched, so nothing has to fit around it),
 * with headers saying where it came from, why it was given up on and after how many tries.
 * `stagegate dead-letters` lists them, and sends one back where it came from once its cause is
 * fixed (`redrive`) or deletes it (`drop`).
 */
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JsMsg, type StoredMsg } from '@nats-io/jetstream';
import { headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { StagegateError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { parseAt } from '../parse.js';
import { STREAMS, subjects } from './subjects.js';

/** Kept this long, then removed by the stream. */
export const DEAD_LETTERS_KEPT_MS = 30 * 24 * 60 * 60_000;

const HEADER = {
  subject: 'Sg-Dead-Subject',
  reason: 'Sg-Dead-Reason',
  deliveries: 'Sg-Dead-Deliveries',
  consumer: 'Sg-Dead-Consumer',
  source: 'Sg-Dead-Source',
} as const;

/** Header values are one line; a reason longer than this is cut (the log line has it whole). */
const MAX_REASON_CHARS = 2_000;

export const DeadLetter = z.object({
  /** Its sequence in SG_DEAD_LETTERS: what `redrive` and `drop` name. */
  seq: z.number().int().positive(),
  /** The subject it was published on, and will be sent back to. */
  subject: z.string().min(1),
  reason: z.string(),
  deliveries: z.coerce.number().int().nonnegative(),
  /** The consumer that gave up on it. */
  consumer: z.string(),
  /** `<stream>:<sequence>` it had there. */
  source: z.string(),
  deadAt: z.string(),
  data: z.string(),
});
export type DeadLetter = z.infer<typeof DeadLetter>;

/**
 * Keeps `msg` as a dead letter, then terminates it. If it cannot be kept (NATS trouble), it is
 * left to come back rather than lost. Publishing it again after a crash is a no-op: its message
 * id is where it came from.
 */
export async function retireToDeadLetters(js: JetStreamClient, msg: JsMsg, reason: string, log: Logger): Promise<void> {
  const { stream, streamSequence, consumer, deliveryCount } = msg.info;
  const h = headers();
  h.set(HEADER.subject, msg.subject);
  h.set(HEADER.reason, oneLine(reason));
  h.set(HEADER.deliveries, String(deliveryCount));
  h.set(HEADER.consumer, consumer);
  h.set(HEADER.source, `${stream}:${streamSequence}`);
  try {
    await js.publish(subjects.deadLetter(msg.subject), msg.data, { msgID: `dead:${stream}:${streamSequence}`, headers: h });
  } catch (err) {
    log.error({ subject: msg.subject, err: errorMessage(err) }, 'could not keep the message as a dead letter; it will be redelivered');
    msg.nak(5_000);
    return;
  }
  // No reason on the term: servers before 2.10 ignore `+TERM <reason>` and would redeliver.
  msg.term();
  log.warn({ subject: msg.subject, reason, deliveries: deliveryCount }, 'message kept as a dead letter');
}

/** How often, and how far apart, a message whose handling fails is tried before it is given up on. */
export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

/** Twelve tries over about six minutes: a NATS or disk hiccup passes, a message that can never be handled stops coming back. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 12, firstDelayMs: 1_000, maxDelayMs: 60_000 };

/** After a failed try: try again later (each wait twice the last), or, after the last one, keep it as a dead letter. */
export async function retryOrRetire(js: JetStreamClient, msg: JsMsg, err: unknown, policy: RetryPolicy, log: Logger): Promise<void> {
  const tries = msg.info.deliveryCount;
  if (tries >= policy.attempts) {
    await retireToDeadLetters(js, msg, `handling failed ${tries} times; the last time: ${errorMessage(err)}`, log);
    return;
  }
  const retryInMs = Math.min(policy.firstDelayMs * 2 ** (tries - 1), policy.maxDelayMs);
  log.error({ err: errorMessage(err), attempt: tries, of: policy.attempts, retryInMs }, 'handling failed; it will be tried again');
  msg.nak(retryInMs);
}

function oneLine(text: string): string {
  const line = text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return line.length <= MAX_REASON_CHARS ? line : `${line.slice(0, MAX_REASON_CHARS - 1)}…`;
}

/** A message of SG_DEAD_LETTERS, however it was read. */
interface Kept {
  seq: number;
  header: MsgHdrs | undefined;
  time: Date;
  text: string;
}

function deadLetterOf(kept: Kept): DeadLetter {
  const header = (name: string) => kept.header?.get(name);
  return parseAt(
    DeadLetter,
    {
      seq: kept.seq,
      subject: header(HEADER.subject),
      reason: header(HEADER.reason),
      deliveries: header(HEADER.deliveries),
      consumer: header(HEADER.consumer),
      source: header(HEADER.source),
      deadAt: kept.time.toISOString(),
      data: kept.text,
    },
    `dead letter ${kept.seq}`,
  );
}

/** Every dead letter kept, oldest first; with `taskId`, only those of that task's inbox. */
export async function listDeadLetters(nc: NatsConnection, filter: { taskId?: string } = {}): Promise<DeadLetter[]> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(STREAMS.deadLetters, {
    filter_subjects: filter.taskId === undefined ? subjects.allDeadLetters : subjects.deadLetter(subjects.inbox(filter.taskId)),
    deliver_policy: DeliverPolicy.All,
  });
  if ((await consumer.info(true)).num_pending === 0) return [];
  const letters: DeadLetter[] = [];
  const messages = await consumer.consume();
  try {
    for await (const m of messages) {
      letters.push(deadLetterOf({ seq: m.seq, header: m.headers, time: new Date(m.info.timestampNanos / 1e6), text: m.string() }));
      if (m.info.pending === 0) break;
    }
  } finally {
    messages.stop();
  }
  return letters;
}

async function loadDeadLetter(nc: NatsConnection, seq: number): Promise<DeadLetter> {
  const jsm = await jetstreamManager(nc);
  let stored: StoredMsg | null;
  try {
    stored = await jsm.streams.getMessage(STREAMS.deadLetters, { seq });
  } catch (err) {
    if (!/not found/i.test(errorMessage(err))) throw err;
    stored = null;
  }
  if (stored === null) throw new StagegateError('DEAD_LETTER_UNKNOWN', `no dead letter ${seq} (see stagegate dead-letters)`);
  return deadLetterOf({ seq: stored.seq, header: stored.header, time: stored.time, text: stored.string() });
}

/**
 * Publishes the dead letter's message again where it came from, then deletes the dead letter.
 * Its message id is new (`redrive:<seq>`), so the stream does not drop it as a repeat of the
 * first delivery; sending the same dead letter twice at once is one message.
 */
export async function redriveDeadLetter(nc: NatsConnection, seq: number): Promise<DeadLetter> {
  const letter = await loadDeadLetter(nc, seq);
  await jetstream(nc).publish(letter.subject, letter.data, { msgID: `redrive:${seq}` });
  await (await jetstreamManager(nc)).streams.deleteMessage(STREAMS.deadLetters, seq);
  return letter;
}

export async function dropDeadLetter(nc: NatsConnection, seq: number): Promise<DeadLetter> {
  const letter = await loadDeadLetter(nc, seq);
  await (await jetstreamManager(nc)).streams.deleteMessage(STREAMS.deadLetters, seq);
  return letter;
}
