/**
 * Messages that cannot be handled are kept, not dropped: a malformed message, and one whose
 * handling failed on every delivery (including one for a task or session that never appeared).
 * Each goes to the SG_DEAD_LETTERS stream as it arrived (its body untouched, so nothing has to
 * fit around it), with headers saying where it came from and why it was given up on.
 * `stagegate dead-letters` lists them, and sends one back where it came from once its cause is
 * fixed (`redrive`) or deletes it (`drop`).
 */
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { headers, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { StagegateError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { redeliveryDelayMs, type RetryPolicy } from './retry-policy.js';
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
  /** The subject it was published on, and will be sent back to; null for a message Stagegate did not keep. */
  subject: z.string().nullable(),
  reason: z.string(),
  /** How often JetStream had delivered it. */
  deliveries: z.number().int().nonnegative().nullable(),
  /** The consumer that gave up on it. */
  consumer: z.string().nullable(),
  /** `<stream>:<sequence>` it had there. */
  source: z.string().nullable(),
  deadAt: z.string(),
  data: z.string(),
});
export type DeadLetter = z.infer<typeof DeadLetter>;

/**
 * Keeps `msg` as a dead letter, then terminates it. If it cannot be kept (NATS trouble, after a
 * few tries), it is left to come back rather than lost. Keeping it again after a crash is a no-op:
 * its message id is where it came from.
 */
export async function retireToDeadLetters(js: JetStreamClient, msg: JsMsg, reason: string, log: Logger): Promise<void> {
  const { stream, streamSequence, consumer, deliveryCount } = msg.info;
  const h = headers();
  // First: nats-server 2.9 finds a header by searching the header block for its name, so a
  // reason quoting "Nats-Msg-Id" ahead of the real one would defeat the dedupe.
  h.set('Nats-Msg-Id', `dead:${stream}:${streamSequence}`);
  h.set(HEADER.subject, msg.subject);
  h.set(HEADER.reason, oneLine(reason));
  h.set(HEADER.deliveries, String(deliveryCount));
  h.set(HEADER.consumer, consumer);
  h.set(HEADER.source, `${stream}:${streamSequence}`);
  for (let attempt = 1; ; attempt++) {
    try {
      await js.publish(subjects.deadLetter(msg.subject), msg.data, { headers: h });
      break;
    } catch (err) {
      if (attempt < 3) {
        await sleep(250 * attempt);
        continue;
      }
      log.error({ subject: msg.subject, err: errorMessage(err) }, 'could not keep the message as a dead letter; it will be redelivered');
      msg.nak(5_000);
      return;
    }
  }
  // No reason on the term: servers before 2.10 ignore `+TERM <reason>` and would redeliver.
  msg.term();
  log.warn({ subject: msg.subject, reason, deliveries: deliveryCount }, 'message kept as a dead letter');
}

/**
 * After a failed try: hand the message back to be delivered again later (each wait twice the
 * last), or, on its last delivery, keep it as a dead letter. Handed back, it no longer holds up
 * its record's later messages: they are applied meanwhile, as they would be by another process.
 */
export async function retryOrRetire(js: JetStreamClient, msg: JsMsg, err: unknown, policy: RetryPolicy, log: Logger): Promise<void> {
  const deliveries = msg.info.deliveryCount;
  if (deliveries >= policy.attempts) {
    await retireToDeadLetters(js, msg, `handling failed on each of its ${deliveries} deliveries; the last time: ${errorMessage(err)}`, log);
    return;
  }
  const retryInMs = redeliveryDelayMs(policy, deliveries);
  log.error({ err: errorMessage(err), delivery: deliveries, of: policy.attempts, retryInMs }, 'handling failed; it will be delivered again');
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

/** Whatever is in the stream is shown: a message without Stagegate's headers says so rather than hiding the rest. */
function deadLetterOf(kept: Kept): DeadLetter {
  const header = (name: string) => kept.header?.get(name) || null;
  const deliveries = Number(header(HEADER.deliveries) ?? Number.NaN);
  const subject = header(HEADER.subject);
  return {
    seq: kept.seq,
    subject,
    reason: header(HEADER.reason) ?? (subject === null ? 'not kept by Stagegate: it has no Sg-Dead headers' : 'no reason recorded'),
    deliveries: Number.isInteger(deliveries) ? deliveries : null,
    consumer: header(HEADER.consumer),
    source: header(HEADER.source),
    deadAt: kept.time.toISOString(),
    data: kept.text,
  };
}

/** Letters read per fetch, and how long a fetch waits: a letter deleted meanwhile must not leave the listing waiting for it. */
const LIST_BATCH = 256;
const LIST_WAIT_MS = 1_000;

/** Every dead letter kept, oldest first; with `taskId`, only those of that task's inbox. */
export async function listDeadLetters(nc: NatsConnection, filter: { taskId?: string } = {}): Promise<DeadLetter[]> {
  const consumer = await jetstream(nc).consumers.get(STREAMS.deadLetters, {
    filter_subjects: filter.taskId === undefined ? subjects.allDeadLetters : subjects.deadLetter(subjects.inbox(filter.taskId)),
    deliver_policy: DeliverPolicy.All,
  });
  if ((await consumer.info(true)).num_pending === 0) return [];
  const letters: DeadLetter[] = [];
  for (;;) {
    let got = 0;
    for await (const m of await consumer.fetch({ max_messages: LIST_BATCH, expires: LIST_WAIT_MS })) {
      got += 1;
      letters.push(deadLetterOf({ seq: m.seq, header: m.headers, time: new Date(m.info.timestampNanos / 1e6), text: m.string() }));
      if (m.info.pending === 0) return letters;
    }
    if (got === 0) return letters;
  }
}

const unknown = (seq: number) => new StagegateError('DEAD_LETTER_UNKNOWN', `no dead letter ${seq} (see stagegate dead-letters)`);

async function loadDeadLetter(nc: NatsConnection, seq: number): Promise<{ letter: DeadLetter; data: Uint8Array }> {
  const stored = await (await jetstreamManager(nc)).streams.getMessage(STREAMS.deadLetters, { seq });
  if (stored === null) throw unknown(seq);
  return { letter: deadLetterOf({ seq: stored.seq, header: stored.header, time: stored.time, text: stored.string() }), data: stored.data };
}

/** Deletes it; one that is already gone (another `redrive` or `drop` got there first) is named as unknown. */
async function deleteDeadLetter(nc: NatsConnection, seq: number): Promise<void> {
  try {
    await (await jetstreamManager(nc)).streams.deleteMessage(STREAMS.deadLetters, seq);
  } catch (err) {
    if (/not found/i.test(errorMessage(err))) throw unknown(seq);
    throw err;
  }
}

/**
 * Publishes the dead letter's message again, byte for byte, where it came from, then deletes the
 * dead letter. Its message id is new (`redrive:<seq>`), so the stream does not drop it as a repeat
 * of the first delivery; sending the same dead letter twice at once is one message.
 */
export async function redriveDeadLetter(nc: NatsConnection, seq: number): Promise<DeadLetter> {
  const { letter, data } = await loadDeadLetter(nc, seq);
  if (letter.subject === null) {
    throw new StagegateError('DEAD_LETTER_UNKNOWN', `dead letter ${seq} does not say where it came from, so it cannot be sent back; drop it instead`);
  }
  await jetstream(nc).publish(letter.subject, data, { msgID: `redrive:${seq}` });
  await deleteDeadLetter(nc, seq);
  return letter;
}

export async function dropDeadLetter(nc: NatsConnection, seq: number): Promise<DeadLetter> {
  const { letter } = await loadDeadLetter(nc, seq);
  await deleteDeadLetter(nc, seq);
  return letter;
}
