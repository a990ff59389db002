/**
 * The orchestrator's loop over its inbox. Any number of these may run against one NATS: they
 * share the durable inbox consumer, and the revision check on each task record decides who
 * wins when two touch the same task. Per message: parse, load, apply, commit, perform, ack.
 * Nothing is kept in memory that is not in NATS, so a killed process loses nothing: the one
 * cache, the records this process last committed, is only a guess that the revision check on
 * the next write confirms or refutes. Each orchestrator also runs the sessions' inbox the same
 * way (`sessions/`), and a timer scheduler (`timers/`) over the shared timers bucket.
 */
import { jetstream, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { retireToDeadLetters, retryOrRetire } from '../core/bus/dead-letters.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../core/bus/retry-policy.js';
import { InboxMessage } from '../core/bus/messages.js';
import { ORCHESTRATOR_CONSUMER, SESSION_CONSUMER, STREAMS } from '../core/bus/subjects.js';
import { openSessionBucket, openTaskBucket, openTimerBucket, openUsageBucket } from '../core/bus/topology.js';
import type { ModelPrice } from '../core/config.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { parseJsonAt } from '../core/parse.js';
import { createSecretRedactor, type RedactSecrets } from '../core/security/redact-secrets.js';
import { applyMessage } from './apply-message.js';
import { consumeInOrder, recordKeyOf } from './ordered-consumer.js';
import { handleSessionMessage } from './sessions/session-handler.js';
import { performOwedEffects, type EffectStores } from './effects.js';
import { createSpendLedger } from './limits/spend-ledger.js';
import { WriteConflict } from '../core/bus/versioned-kv.js';
import { commitTask, loadTask, type StoredTask } from './task-store.js';
import type { Clock } from './timers/clock.js';
import { startTimerScheduler, type TimerScheduler } from './timers/timer-scheduler.js';

export interface OrchestratorOptions {
  nc: NatsConnection;
  log: Logger;
  /** Messages handled at once; one task's are handled one at a time, as they arrive (one that fails comes back later). */
  concurrency?: number;
  /** The gate timer scheduler's clock (tests move it by hand); the system clock by default. */
  clock?: Clock;
  /** The process's configured secrets, kept out of what it publishes; default: none held. */
  redact?: RedactSecrets;
  /** `model.pricing`: what agent results' usage is counted at toward the daily spend caps (absent: $0). */
  pricing?: Readonly<Record<string, ModelPrice>>;
  /** How often a message whose handling fails is delivered before it is kept as a dead letter. */
  retry?: RetryPolicy;
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
  const stores: EffectStores = {
    timers: timersKv,
    spend: createSpendLedger(await openUsageBucket(nc), options.pricing ?? {}, log),
    redact: options.redact ?? createSecretRedactor([]),
  };
  const limit = options.concurrency ?? 32;
  const retry = options.retry ?? DEFAULT_RETRY;
  const committed = createCommittedCache();
  const tasks = await consumeInOrder({
    consumer: await js.consumers.get(STREAMS.inbox, ORCHESTRATOR_CONSUMER),
    limit,
    keyOf: recordKeyOf,
    handle: (msg) => handleMessage(msg, { js, kv, stores, committed, retry, log }),
    log,
  });
  const sessionsKv = await openSessionBucket(nc);
  const sessions = await consumeInOrder({
    consumer: await js.consumers.get(STREAMS.sessions, SESSION_CONSUMER),
    limit,
    keyOf: recordKeyOf,
    handle: (msg) => handleSessionMessage(msg, { js, kv: sessionsKv, stores, retry, log }),
    log,
  });

  const timers = await startTimerScheduler({ kv: timersKv, js, log, ...(options.clock === undefined ? {} : { clock: options.clock }) });

  log.info('orchestrator started');
  return {
    timers,
    async stop() {
      await timers.stop();
      await Promise.all([tasks.stop(), sessions.stop()]);
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

interface InboxDeps {
  js: JetStreamClient;
  kv: KV;
  stores: EffectStores;
  committed: CommittedCache;
  retry: RetryPolicy;
  log: Logger;
}

async function handleMessage(msg: JsMsg, deps: InboxDeps): Promise<void> {
  const { js, log } = deps;
  let message: InboxMessage;
  try {
    message = parseJsonAt(InboxMessage, msg.string(), `message on ${msg.subject}`);
    if (recordKeyOf(msg.subject) !== message.taskId) {
      throw new Error(`message on ${msg.subject} names task ${message.taskId}`);
    }
  } catch (err) {
    log.warn({ subject: msg.subject, reason: errorMessage(err) }, 'malformed inbox message rejected');
    await retireToDeadLetters(js, msg, errorMessage(err), log);
    return;
  }
  const taskLog = log.child({ taskId: message.taskId, msgId: message.msgId, type: message.type });
  try {
    await applyAndAck(msg, message, deps, taskLog);
  } catch (err) {
    await retryOrRetire(js, msg, err, deps.retry, taskLog);
  }
}

/**
 * Load, apply, commit, perform, ack. A task that does not exist (yet: its submission may still be
 * on its way through another orchestrator) is a failure like any other, tried again.
 */
async function applyAndAck(msg: JsMsg, message: InboxMessage, { js, kv, stores, committed }: InboxDeps, taskLog: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const cached = attempt === 1 ? committed.get(message.taskId) : undefined;
    const stored = cached ?? (await loadTask(kv, message.taskId));
    const outcome = applyMessage(stored?.record, message);
    if (cached !== undefined && outcome.kind !== 'commit') {
      committed.forget(message.taskId);
      continue;
    }
    if (outcome.kind === 'unknown-task') throw new Error(`no task ${message.taskId}`);
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
    await performOwedEffects(js, outcome.effects, stores, outcome.kind === 'commit');
    msg.ack();
    return;
  }
}
