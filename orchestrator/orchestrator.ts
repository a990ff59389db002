/**
 * The orchestrator's loop over its inbox. Any number of these may run against one NATS: they
 * share the durable inbox consumer, and the revision check on each task record decides who
 * wins when two touch the same task. Per message: parse, load, apply, commit, perform, ack.
 * Nothing is kept in memory that is not in NATS, so a killed process loses nothing: the one
 * cache, the records this process last committed, is only a guess that the revision check on
 * the next write confirms or refutes. Each
 * orchestrator also runs a gate timer scheduler (`timers/`) over the shared timers bucket.
 */
import { jetstream, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { InboxMessage } from '../core/bus/messages.js';
import { ORCHESTRATOR_CONSUMER, STREAMS } from '../core/bus/subjects.js';
import { openTaskBucket, openTimerBucket, openUsageBucket } from '../core/bus/topology.js';
import type { ModelPrice } from '../core/config.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { parseJsonAt } from '../core/parse.js';
import { applyMessage } from './apply-message.js';
import { performEffects, type EffectStores } from './effects.js';
import { createSpendLedger } from './limits/spend-ledger.js';
import { WriteConflict } from '../core/bus/versioned-kv.js';
import { commitTask, loadTask, type StoredTask } from './task-store.js';
import type { Clock } from './timers/clock.js';
import { startTimerScheduler, type TimerScheduler } from './timers/timer-scheduler.js';

export interface OrchestratorOptions {
  nc: NatsConnection;
  log: Logger;
  /** Messages handled at once; messages of one task are always handled in order. */
  concurrency?: number;
  /** The gate timer scheduler's clock (tests move it by hand); the system clock by default. */
  clock?: Clock;
  /** `model.pricing`: what agent results' usage is counted at toward the daily spend caps (absent: $0). */
  pricing?: Readonly<Record<string, ModelPrice>>;
}

export interface RunningOrchestrator {
  /** This orchestrator's gate timer scheduler. */
  timers: TimerScheduler;
  stop(): Promise<void>;
}

const MAX_CONFLICT_RETRIES = 50;

export async function startOrchestrator(options: OrchestratorOptions): Promise<RunningOrchestrator> {
  const { nc, log } = options;
  const js = jetstream(nc);
  const kv = await openTaskBucket(nc);
  const timersKv = await openTimerBucket(nc);
  const stores: EffectStores = { timers: timersKv, spend: createSpendLedger(await openUsageBucket(nc), options.pricing ?? {}, log) };
  const consumer = await js.consumers.get(STREAMS.inbox, ORCHESTRATOR_CONSUMER);
  const limit = options.concurrency ?? 32;
  const messages = await consumer.consume({ max_messages: limit });
  const inFlight = new Set<Promise<void>>();
  const perTask = new Map<string, Promise<void>>();
  const committed = createCommittedCache();

  const loop = (async () => {
    for await (const msg of messages) {
      while (inFlight.size >= limit) await Promise.race(inFlight);
      const key = taskKeyOf(msg.subject);
      const previous = perTask.get(key) ?? Promise.resolve();
      // A failure here (even an ack on a closed connection) must neither stop the loop nor skip
      // the task's next messages: the unacked message comes back.
      const work = previous
        .then(() => handleMessage(msg, js, kv, stores, committed, log))
        .catch((err: unknown) => log.error({ subject: msg.subject, err: errorMessage(err) }, 'inbox message not handled; it will be redelivered'));
      const tracked = work.finally(() => {
        inFlight.delete(tracked);
        if (perTask.get(key) === tracked) perTask.delete(key);
      });
      perTask.set(key, tracked);
      inFlight.add(tracked);
    }
  })();

  const timers = await startTimerScheduler({ kv: timersKv, js, log, ...(options.clock === undefined ? {} : { clock: options.clock }) });

  log.info('orchestrator started');
  return {
    timers,
    async stop() {
      await timers.stop();
      messages.stop();
      await loop;
      await Promise.all(inFlight);
    },
  };
}

/**
 * The record and revision this process last wrote per task. Reading it instead of the bucket
 * saves a round trip per event; if someone else wrote since, the write fails its revision check
 * and the step is redone from the bucket. A step that commits nothing always re-reads, so a
 * stale copy can never make an event look inapplicable.
 */
interface CommittedCache {
  get(taskId: string): StoredTask | undefined;
  set(taskId: string, stored: StoredTask): void;
  forget(taskId: string): void;
}

const CACHE_LIMIT = 10_000;

function createCommittedCache(): CommittedCache {
  const entries = new Map<string, StoredTask>();
  return {
    get: (taskId) => entries.get(taskId),
    set(taskId, stored) {
      entries.delete(taskId);
      entries.set(taskId, stored);
      if (entries.size > CACHE_LIMIT) entries.delete(entries.keys().next().value as string);
    },
    forget: (taskId) => entries.delete(taskId),
  };
}

function taskKeyOf(subject: string): string {
  return subject.split('.')[2] ?? subject;
}

async function handleMessage(
  msg: JsMsg,
  js: JetStreamClient,
  kv: KV,
  stores: EffectStores,
  committed: CommittedCache,
  log: Logger,
): Promise<void> {
  let message: InboxMessage;
  try {
    message = parseJsonAt(InboxMessage, msg.string(), `message on ${msg.subject}`);
    if (taskKeyOf(msg.subject) !== message.taskId) {
      throw new Error(`message on ${msg.subject} names task ${message.taskId}`);
    }
  } catch (err) {
    log.warn({ subject: msg.subject, reason: errorMessage(err) }, 'malformed inbox message rejected');
    // No reason on the term: servers before 2.10 ignore `+TERM <reason>`, and the message
    // would come back every ack wait. The reason is in the log line above.
    msg.term();
    return;
  }

  const taskLog = log.child({ taskId: message.taskId, msgId: message.msgId, type: message.type });
  try {
    for (let attempt = 1; ; attempt++) {
      const cached = attempt === 1 ? committed.get(message.taskId) : undefined;
      const stored = cached ?? (await loadTask(kv, message.taskId));
      const outcome = applyMessage(stored?.record, message);
      if (cached !== undefined && outcome.kind !== 'commit') {
        committed.forget(message.taskId);
        continue;
      }
      if (outcome.kind === 'unknown-task') {
        taskLog.warn('message for an unknown task dropped');
        msg.term();
        return;
      }
      if (outcome.kind === 'commit') {
        try {
          const revision = await commitTask(kv, outcome.record, stored?.revision);
          committed.set(message.taskId, { record: outcome.record, revision });
        } catch (err) {
          committed.forget(message.taskId);
          if (err instanceof WriteConflict && attempt < MAX_CONFLICT_RETRIES) continue;
          throw err;
        }
        taskLog.info({ state: outcome.record.state }, 'event applied');
      } else {
        taskLog.info({ reason: outcome.reason }, 'event not applied');
      }
      await performEffects(js, outcome.effects, stores);
      msg.ack();
      return;
    }
  } catch (err) {
    taskLog.error({ err: errorMessage(err) }, 'handling failed; the message will be redelivered');
    msg.nak(1_000);
  }
}
