/**
 * Fires durable timers. nats-server 2.9 has neither per-message TTLs nor scheduled messages,
 * so timers are records in the `sg-timers` bucket, written by the orchestrator's effects: gate
 * timers when a task reaches a gate whose policy has a timeout, and scheduled messages (stage
 * timeouts, a session's deadline and digests), published as written when they fall due.
 *
 * Every orchestrator runs one scheduler. It watches the bucket (the watch first delivers every
 * existing key, then each change), keeps an in-memory schedule that is only a copy of the
 * bucket, and when a timer is due it publishes `gate.timer_fired` to the task's inbox with a
 * deterministic message id, then deletes the record if it is still the revision it fired.
 *
 * - Restart: nothing is lost (the records are in NATS) and a timer that fell due while no
 *   orchestrator ran fires as soon as one starts.
 * - Two schedulers firing the same timer publish the same message id, which JetStream's
 *   duplicate window drops; a crash between publish and delete fires it again later, and the
 *   statechart ignores a timer that already fired or belongs to an old visit.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { Bucket, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { DurableTimer, GateTimer, GateTimerFired } from '../../core/bus/messages.js';
import { subjects } from '../../core/bus/subjects.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { systemClock, type Clock } from './clock.js';
import { dropFiredTimer, parseTimerEntry } from './timer-store.js';

export interface TimerSchedulerOptions {
  kv: KV;
  js: JetStreamClient;
  log: Logger;
  clock?: Clock;
  /** Longest single wait: the schedule is re-checked at least this often. */
  maxWaitMs?: number;
  /** After a failed publish, the timer is tried again this much later. */
  retryMs?: number;
  /** How often delete markers older than 30 minutes are purged from the bucket. */
  purgeDeletesEveryMs?: number;
}

export interface TimerScheduler {
  /** Resolves once the bucket's existing timers are in the schedule. */
  readonly ready: Promise<void>;
  /** Timers scheduled now, by key: for tests and diagnostics. */
  pendingKeys(): string[];
  stop(): Promise<void>;
}

interface Scheduled {
  timer: DurableTimer;
  revision: number;
  due: number;
}

/** The inbox message a timer becomes; the same for every scheduler that fires it. */
export function timerFiredMessage(timer: GateTimer, firedAt: number): GateTimerFired {
  const due = Date.parse(timer.fireAt);
  return {
    type: 'gate.timer_fired',
    taskId: timer.taskId,
    msgId: `${timer.taskId}:timer:${timer.gate}:${timer.visit}:${timer.kind}`,
    sentAt: new Date(Math.max(firedAt, due)).toISOString(),
    gate: timer.gate,
    visit: timer.visit,
    kind: timer.kind,
    fireAt: timer.fireAt,
  };
}

function publicationOf(timer: DurableTimer, firedAt: number): { subject: string; message: { msgId: string; sentAt: string } } {
  if ('subject' in timer) {
    const sentAt = new Date(Math.max(firedAt, Date.parse(timer.fireAt))).toISOString();
    return { subject: timer.subject, message: { ...timer.message, sentAt } };
  }
  return { subject: subjects.inbox(timer.taskId), message: timerFiredMessage(timer, firedAt) };
}

export async function startTimerScheduler(options: TimerSchedulerOptions): Promise<TimerScheduler> {
  const { kv, js } = options;
  const log = options.log.child({ component: 'timers' });
  const clock = options.clock ?? systemClock;
  const maxWaitMs = options.maxWaitMs ?? 60_000;
  const retryMs = options.retryMs ?? 1_000;
  const schedule = new Map<string, Scheduled>();
  let wake: unknown;
  let stopped = false;
  let firing: Promise<void> = Promise.resolve();

  const arm = () => {
    if (wake !== undefined) clock.clearTimer(wake);
    wake = undefined;
    if (stopped || schedule.size === 0) return;
    let next = Infinity;
    for (const s of schedule.values()) next = Math.min(next, s.due);
    const wait = Math.min(Math.max(next - clock.now(), 0), maxWaitMs);
    wake = clock.setTimer(() => {
      wake = undefined;
      firing = firing.then(fireDue).catch((err: unknown) => log.error({ err: errorMessage(err) }, 'gate timer round failed'));
    }, wait);
  };

  const fireDue = async () => {
    const now = clock.now();
    const due = [...schedule.entries()].filter(([, s]) => s.due <= now).sort((a, b) => a[1].due - b[1].due);
    for (const [key, scheduled] of due) {
      if (stopped) return;
      try {
        await fire(key, scheduled, now);
      } catch (err) {
        // Kept in the schedule and in the bucket: tried again shortly.
        log.warn({ key, err: errorMessage(err) }, 'gate timer could not fire; trying again');
        scheduled.due = clock.now() + retryMs;
      }
    }
    arm();
  };

  const fire = async (key: string, { timer, revision }: Scheduled, now: number) => {
    const { subject, message } = publicationOf(timer, now);
    await js.publish(subject, JSON.stringify(message), { msgID: message.msgId });
    if (schedule.get(key)?.revision === revision) schedule.delete(key);
    const deleted = await dropFiredTimer(kv, key, revision);
    log.info({ ...('taskId' in timer ? { taskId: timer.taskId } : {}), key, deleted }, 'timer fired');
  };

  const apply = (entry: KvWatchEntry) => {
    if (entry.operation !== 'PUT') {
      schedule.delete(entry.key);
      return;
    }
    try {
      const timer = parseTimerEntry(entry);
      schedule.set(entry.key, { timer, revision: entry.revision, due: Date.parse(timer.fireAt) });
    } catch (err) {
      log.warn({ key: entry.key, err: errorMessage(err) }, 'malformed gate timer ignored');
    }
  };

  const initialCount = (await kv.status()).values;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  if (initialCount === 0) markReady();

  const watch = await kv.watch();
  const loop = (async () => {
    for await (const entry of watch) {
      apply(entry);
      if (!entry.isUpdate && entry.delta === 0) markReady();
      if (entry.isUpdate) markReady();
      arm();
    }
  })().catch((err: unknown) => {
    if (!stopped) log.error({ err: errorMessage(err) }, 'gate timer watch ended');
  });

  let purge: unknown;
  const purgeEvery = options.purgeDeletesEveryMs ?? 3_600_000;
  const schedulePurge = () => {
    purge = clock.setTimer(() => {
      if (stopped) return;
      if (kv instanceof Bucket) {
        kv.purgeDeletes().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'purging timer delete markers failed'));
      }
      schedulePurge();
    }, purgeEvery);
  };
  schedulePurge();

  log.info({ timers: initialCount }, 'gate timer scheduler started');
  return {
    ready,
    pendingKeys: () => [...schedule.keys()].sort(),
    async stop() {
      stopped = true;
      if (wake !== undefined) clock.clearTimer(wake);
      if (purge !== undefined) clock.clearTimer(purge);
      markReady();
      watch.stop();
      await loop;
      await firing;
    },
  };
}
