/**
 * The loop every agent runs: pull a job of its role, keep it alive while working, publish the
 * result, and only then ack. A worker killed mid-job leaves the job unacked, so another worker
 * gets it once the ack wait runs out; after `maxDeliveries` the task is failed with the reason.
 * Results and progress go out without the values of the worker's configured secrets.
 */
import { jetstream, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage, isStagegateError } from '../errors.js';
import { retireToDeadLetters } from './dead-letters.js';
import type { Logger } from '../log.js';
import { parseJsonAt } from '../parse.js';
import { createSecretRedactor, type RedactSecrets } from '../security/redact-secrets.js';
import { emptyUsage } from '../task-record.js';
import {
  Job,
  ROLE_OF_JOB,
  type AgentProgress,
  type AgentResult,
  type AgentRole,
  type BacklogProposed,
  type Stage,
  type Usage,
} from './messages.js';
import { STREAMS, subjects, workerConsumer } from './subjects.js';

type Envelope = 'taskId' | 'msgId' | 'sentAt' | 'jobId';
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type JobOutcome = DistributiveOmit<AgentResult | BacklogProposed, Envelope>;
type JobTypeOf<R extends AgentRole> = { [T in Job['type']]: (typeof ROLE_OF_JOB)[T] extends R ? T : never }[Job['type']];
export type JobOf<R extends AgentRole> = Extract<Job, { type: JobTypeOf<R> }>;

const DEFAULT_MAX_JOB_MS = 4 * 60 * 60_000;

export interface JobContext {
  log: Logger;
  /** Reports progress on the task's log; never fails the job. */
  progress(message: string, usage?: Usage): Promise<void>;
}

export type JobHandler<R extends AgentRole> = (job: JobOf<R>, ctx: JobContext) => Promise<JobOutcome>;

export interface JobWorkerOptions<R extends AgentRole> {
  nc: NatsConnection;
  role: R;
  stage: Stage;
  handle: JobHandler<R>;
  log: Logger;
  concurrency: number;
  ackWaitMs: number;
  maxDeliveries: number;
  /** How long one job may run before its worker stops keeping it (default 4 hours). */
  maxJobMs?: number;
  /** Stamps results; injected so tests can control time. */
  now?: () => Date;
  /** The worker's configured secrets, kept out of its results and progress; default: none held. */
  redact?: RedactSecrets;
  /** The model this role's handler calls, stamped on results that do not name one, so their usage can be priced. */
  model?: string;
}

export interface RunningWorker {
  /** Stops taking jobs and waits for the ones in hand. */
  stop(): Promise<void>;
}

export async function startJobWorker<R extends AgentRole>(options: JobWorkerOptions<R>): Promise<RunningWorker> {
  const js = jetstream(options.nc);
  const consumer = await js.consumers.get(STREAMS.jobs, workerConsumer(options.role));
  let stopping = false;
  const loops = Array.from({ length: options.concurrency }, async () => {
    while (!stopping) {
      let msg: JsMsg | null;
      try {
        msg = await consumer.next({ expires: 2_000 });
      } catch (err) {
        options.log.warn({ err: errorMessage(err) }, 'pulling a job failed; retrying');
        await sleep(500);
        continue;
      }
      if (msg === null) continue;
      try {
        await processJob(js, msg, options);
      } catch (err) {
        // Never take the worker down: an unacked job comes back to this or another worker.
        options.log.error({ subject: msg.subject, err: errorMessage(err) }, 'job handling failed; it will be redelivered');
      }
    }
  });
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

async function processJob<R extends AgentRole>(js: JetStreamClient, msg: JsMsg, options: JobWorkerOptions<R>) {
  const { log, role } = options;
  let job: JobOf<R>;
  try {
    const parsed = parseJsonAt(Job, msg.string(), `job on ${msg.subject}`);
    if (ROLE_OF_JOB[parsed.type] !== role) {
      throw new Error(`job on ${msg.subject}: a ${role} cannot run '${parsed.type}'`);
    }
    job = parsed as JobOf<R>;
  } catch (err) {
    log.warn({ subject: msg.subject, reason: errorMessage(err) }, 'malformed job rejected');
    await retireToDeadLetters(js, msg, errorMessage(err), log);
    return;
  }

  const jobLog = log.child({ taskId: job.taskId, jobId: job.msgId, role, delivery: msg.info.deliveryCount });
  const now = options.now ?? (() => new Date());
  const redact = options.redact ?? createSecretRedactor([]);
  const publishOutcome = async (outcome: JobOutcome) => {
    const model = outcome.model ?? options.model;
    const result = { ...outcome, ...(model === undefined ? {} : { model }), taskId: job.taskId, msgId: `${job.msgId}:result`, sentAt: now().toISOString(), jobId: job.msgId };
    await publishWithRetry(js, resultSubjectOf(job), redact(result), jobLog);
  };

  if (msg.info.deliveryCount > options.maxDeliveries) {
    jobLog.error('job abandoned: delivered too many times without finishing');
    await publishOutcome({
      type: 'job.failed',
      stage: options.stage,
      usage: emptyUsage(),
      reason: `the ${role} job was delivered ${options.maxDeliveries} times and no worker finished it (workers stopped or crashed mid-job)`,
    });
    await confirmAck(msg, jobLog);
    return;
  }

  // A job that hangs past its deadline stops heart-beating, so the ack wait hands it to another
  // worker (and, past maxDeliveries, fails the task) instead of holding the task forever.
  const startedAt = Date.now();
  const maxJobMs = options.maxJobMs ?? DEFAULT_MAX_JOB_MS;
  const heartbeat = setInterval(() => {
    if (Date.now() - startedAt <= maxJobMs) {
      msg.working();
      return;
    }
    clearInterval(heartbeat);
    jobLog.error({ maxJobMs }, 'job ran past its deadline; no longer keeping it: it will be redelivered');
  }, Math.max(250, Math.floor(options.ackWaitMs / 3)));
  try {
    jobLog.info('job started');
    let progressSeq = 0;
    const ctx: JobContext = {
      log: jobLog,
      progress: async (message, usage) => {
        progressSeq += 1;
        const entry: AgentProgress = {
          type: 'agent.progress',
          taskId: job.taskId,
          // Unique per delivery and entry, so retries of one entry are dropped and nothing else is.
          msgId: `${job.msgId}:${msg.info.deliveryCount}:progress:${progressSeq}`,
          sentAt: now().toISOString(),
          role,
          jobId: job.msgId,
          message,
          ...(usage === undefined ? {} : { usage }),
        };
        // A few tries under the same message id (JetStream drops repeats), then give up: progress
        // is for people watching, and must never hold up or fail the job.
        for (let attempt = 1; attempt <= 3; attempt++) {
          try {
            await js.publish(subjects.progress(job.taskId), JSON.stringify(redact(entry)), { msgID: entry.msgId });
            return;
          } catch (err) {
            if (attempt === 3) jobLog.warn({ err: errorMessage(err) }, 'progress not published');
            else await sleep(200 * attempt);
          }
        }
      },
    };
    let outcome: JobOutcome;
    try {
      outcome = await options.handle(job, ctx);
    } catch (err) {
      const usage = isStagegateError(err) ? (err.details?.usage as Usage | undefined) : undefined;
      jobLog.warn({ reason: errorMessage(err) }, 'job failed');
      outcome = { type: 'job.failed', stage: options.stage, reason: errorMessage(err), usage: usage ?? emptyUsage() };
    }
    await publishOutcome(outcome);
    await confirmAck(msg, jobLog);
    jobLog.info({ outcome: outcome.type }, 'job finished');
  } finally {
    clearInterval(heartbeat);
  }
}

/**
 * Waits for the server to confirm the ack, so a worker that stops (or a process that exits) after
 * a job has really let go of it. An unconfirmed ack only means the job may come back: its result
 * was published under a fixed message id, so a second run's result is dropped as a repeat.
 */
async function confirmAck(msg: JsMsg, log: Logger) {
  try {
    await msg.ackAck();
  } catch (err) {
    log.warn({ err: errorMessage(err) }, 'the server did not confirm the job\'s ack; it may be redelivered');
  }
}

/** A backlog job belongs to a session (its `taskId` is the session's id); every other job to a task. */
function resultSubjectOf(job: Job): string {
  return job.type === 'backlog.request' ? subjects.session(job.taskId) : subjects.inbox(job.taskId);
}

/**
 * A result must not be lost to a NATS outage: keep trying, heart-beating meanwhile, however long
 * it takes. Giving up would throw away the work (a coder's hour) or, on a last delivery, leave
 * the task waiting for a result that never comes.
 */
async function publishWithRetry(js: JetStreamClient, subject: string, payload: { msgId: string }, log: Logger) {
  for (let attempt = 1; ; attempt++) {
    try {
      await js.publish(subject, JSON.stringify(payload), { msgID: payload.msgId });
      return;
    } catch (err) {
      log.warn({ err: errorMessage(err), attempt }, 'publishing the result failed; retrying');
      await sleep(Math.min(5_000, 250 * attempt));
    }
  }
}
