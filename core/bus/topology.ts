/**
 * Creates the streams, consumers and bucket Stagegate needs, or brings their settings up to
 * date. Every process calls it at start, so any one of them may be the first to run.
 */
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DEAD_LETTERS_KEPT_MS } from './dead-letters.js';
import { AgentRole } from './messages.js';
import { MAX_LIMIT_WINDOW_MS } from '../config.js';
import { LIMITS_BUCKET, ORCHESTRATOR_CONSUMER, SESSION_CONSUMER, SESSIONS_BUCKET, STREAMS, TASKS_BUCKET, TIMERS_BUCKET, USAGE_BUCKET, subjects, workerConsumer } from './subjects.js';

const nanos = (ms: number) => ms * 1_000_000;

/** Effects are retried with the same Nats-Msg-Id within this window: the dedupe horizon. */
const DUPLICATE_WINDOW_MS = 10 * 60_000;

export interface TopologyOptions {
  jobAckWaitMs: number;
  /** Deliveries a job gets; one more is added so a worker can report the job as abandoned. */
  jobMaxDeliveries: number;
  /** Bring existing consumers to these settings (orchestrators and workers do; clients only create). */
  updateExisting: boolean;
}

export async function ensureTopology(nc: NatsConnection, options: TopologyOptions): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const streams: Array<[string, string, RetentionPolicy]> = [
    [STREAMS.jobs, subjects.allJobs, RetentionPolicy.Workqueue],
    [STREAMS.inbox, subjects.allInbox, RetentionPolicy.Workqueue],
    [STREAMS.log, subjects.allLogs, RetentionPolicy.Limits],
    [STREAMS.sessions, subjects.allSessions, RetentionPolicy.Workqueue],
  ];
  for (const [name, subject, retention] of streams) {
    await ensureStream(jsm, {
      name,
      subjects: [subject],
      retention,
      storage: StorageType.File,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    });
  }
  await ensureStream(jsm, {
    name: STREAMS.deadLetters,
    subjects: [subjects.allDeadLetters],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    max_age: nanos(DEAD_LETTERS_KEPT_MS),
  });
  for (const role of AgentRole.options) {
    await ensureConsumer(jsm, STREAMS.jobs, options.updateExisting, {
      durable_name: workerConsumer(role),
      filter_subject: subjects.job(role),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(options.jobAckWaitMs),
      max_deliver: options.jobMaxDeliveries + 1,
      max_ack_pending: 10_000,
    });
  }
  await ensureConsumer(jsm, STREAMS.inbox, options.updateExisting, {
    durable_name: ORCHESTRATOR_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(10_000),
    max_ack_pending: 10_000,
  });
  await ensureConsumer(jsm, STREAMS.sessions, options.updateExisting, {
    durable_name: SESSION_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(10_000),
    max_ack_pending: 10_000,
  });
  await openTaskBucket(nc);
  await openTimerBucket(nc);
  await openSessionBucket(nc);
  await openLimitsBucket(nc);
  await openUsageBucket(nc);
}

export function openTaskBucket(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(TASKS_BUCKET, { history: 5 });
}

export function openSessionBucket(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(SESSIONS_BUCKET, { history: 5 });
}

/** Gate timers (orchestrator/timers): one key per pending timer, deleted when it fires. */
export function openTimerBucket(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(TIMERS_BUCKET, { history: 1 });
}

export function openLimitsBucket(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(LIMITS_BUCKET, { history: 1 });
}

/** Kept a day past the longest trigger window, which also covers a UTC day of spend. */
const USAGE_KEPT_MS = MAX_LIMIT_WINDOW_MS + 24 * 60 * 60_000;

export function openUsageBucket(nc: NatsConnection): Promise<KV> {
  return openAgingBucket(nc, USAGE_BUCKET, USAGE_KEPT_MS);
}

/**
 * A KV bucket (history 1) whose entries are dropped `ttlMs` after their last write. Creating a
 * bucket that exists leaves its settings alone, so one made before it had this age limit (or with
 * another) is brought to it here.
 */
export async function openAgingBucket(nc: NatsConnection, name: string, ttlMs: number): Promise<KV> {
  const kv = await new Kvm(nc).create(name, { history: 1, ttl: ttlMs });
  const status = await kv.status();
  if (status.ttl !== ttlMs) await (await jetstreamManager(nc)).streams.update(status.streamInfo.config.name, { max_age: nanos(ttlMs) });
  return kv;
}

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }) {
  try {
    const info = await jsm.streams.info(config.name);
    if (info.config.duplicate_window !== config.duplicate_window) await jsm.streams.update(config.name, config);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(config);
  }
}

async function ensureConsumer(jsm: JetStreamManager, stream: string, update: boolean, config: Partial<ConsumerConfig>) {
  const name = config.durable_name as string;
  try {
    const info = await jsm.consumers.info(stream, name);
    if (update && (info.config.ack_wait !== config.ack_wait || info.config.max_deliver !== config.max_deliver)) {
      await jsm.consumers.update(stream, name, { ack_wait: config.ack_wait, max_deliver: config.max_deliver });
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(stream, config);
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && /not found/i.test(err.message);
}
