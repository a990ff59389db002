/**
 * Timestamps (performance.now, one process) of each task's way through the pipeline, and the
 * per-hop figures derived from them. A hop runs, as the overhead is defined, from "a worker
 * publishes its result" (its handler returned: the job worker publishes right after) to "the
 * next job is dispatched" (it appears on the jobs subject); the time until a worker's handler
 * is called with it is kept beside it. Taps on the bus split a hop into legs.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { JobHandler } from '../core/bus/job-worker.js';
import { ROLE_OF_JOB, type AgentRole } from '../core/bus/messages.js';
import { subjects } from '../core/bus/subjects.js';

const ROLE_OF_JOB_TYPE: Readonly<Record<string, AgentRole | undefined>> = ROLE_OF_JOB;

type Stamps = Partial<Record<AgentRole, number>>;

interface Timeline {
  submitted?: number;
  /** A worker's handler was called with the role's job. */
  received: Stamps;
  /** The role's handler returned; the result is published next. */
  resulted: Stamps;
  /** The role's result appeared on the inbox subject (bus tap). */
  resultSeen: Stamps;
  /** The role's job appeared on the jobs subject (bus tap). */
  jobSeen: Stamps;
  end?: TaskEnd;
}

export interface TaskEnd {
  state: string;
  at: number;
}

/** The hops of one task, in order: result of the first role → job of the second. */
export const HOPS = [
  ['planner', 'coder'],
  ['coder', 'reviewer'],
  ['reviewer', 'deployer'],
] as const satisfies ReadonlyArray<readonly [AgentRole, AgentRole]>;

const FINAL_STATES = new Set(['done', 'failed', 'cancelled']);

const ROLE_OF_RESULT: Record<string, AgentRole> = {
  'plan.proposed': 'planner',
  'code.committed': 'coder',
  'review.approved': 'reviewer',
  'review.changes_requested': 'reviewer',
  'deploy.succeeded': 'deployer',
};

const Envelope = z.object({ type: z.string(), taskId: z.string() });
const TaskEvent = z.object({ type: z.literal('task.event'), taskId: z.string(), state: z.string() });

export interface HopSamples {
  /** Result published → next job dispatched (seen on the jobs subject). */
  hop: number[];
  /** Result published → next job received by a worker's handler. */
  hopToWorker: number[];
  byHop: Record<string, number[]>;
  legs: { resultToInbox: number[]; inboxToJob: number[]; jobToWorker: number[] };
  /** task.submit published → first job received by a worker. */
  submitToFirstJob: number[];
  /** Last result published → `done` recorded on the task's log. */
  lastResultToDone: number[];
  /** Submit → done, whole task. */
  taskLatency: number[];
}

export class TaskTimelines {
  private readonly timelines = new Map<string, Timeline>();
  private readonly waiters = new Map<string, (end: TaskEnd) => void>();

  /** The handler, with its start and its return stamped on the job's task. */
  wrap<R extends AgentRole>(role: R, handler: JobHandler<R>): JobHandler<R> {
    return async (job, ctx) => {
      this.of(job.taskId).received[role] = performance.now();
      const outcome = await handler(job, ctx);
      this.of(job.taskId).resulted[role] = performance.now();
      return outcome;
    };
  }

  markSubmitted(taskId: string): void {
    this.of(taskId).submitted = performance.now();
  }

  /** Resolves with the final state, or undefined after `timeoutMs`. */
  waitForEnd(taskId: string, timeoutMs: number): Promise<TaskEnd | undefined> {
    const known = this.timelines.get(taskId)?.end;
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(taskId);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.set(taskId, (end) => {
        clearTimeout(timer);
        resolve(end);
      });
    });
  }

  /** Subscribes to the inbox, jobs and log subjects (core NATS, no JetStream consumer). */
  tap(nc: NatsConnection): Subscription[] {
    const inbox = nc.subscribe(subjects.allInbox, {
      callback: (_err, m) => {
        const at = performance.now();
        const parsed = Envelope.safeParse(jsonOf(m.string()));
        const role = parsed.success ? ROLE_OF_RESULT[parsed.data.type] : undefined;
        if (parsed.success && role !== undefined) this.of(parsed.data.taskId).resultSeen[role] = at;
      },
    });
    const jobs = nc.subscribe(subjects.allJobs, {
      callback: (_err, m) => {
        const at = performance.now();
        const parsed = Envelope.safeParse(jsonOf(m.string()));
        const role = parsed.success ? ROLE_OF_JOB_TYPE[parsed.data.type] : undefined;
        if (parsed.success && role !== undefined) this.of(parsed.data.taskId).jobSeen[role] = at;
      },
    });
    const log = nc.subscribe(subjects.allLogs, {
      callback: (_err, m) => {
        const at = performance.now();
        const parsed = TaskEvent.safeParse(jsonOf(m.string()));
        if (parsed.success && FINAL_STATES.has(parsed.data.state)) this.recordEnd(parsed.data.taskId, { state: parsed.data.state, at });
      },
    });
    return [inbox, jobs, log];
  }

  samples(taskIds: Iterable<string>): HopSamples {
    const out: HopSamples = {
      hop: [],
      hopToWorker: [],
      byHop: Object.fromEntries(HOPS.map(([from, to]) => [`${from}→${to}`, []])),
      legs: { resultToInbox: [], inboxToJob: [], jobToWorker: [] },
      submitToFirstJob: [],
      lastResultToDone: [],
      taskLatency: [],
    };
    for (const taskId of taskIds) {
      const t = this.timelines.get(taskId);
      if (t === undefined) continue;
      for (const [from, to] of HOPS) {
        const published = t.resulted[from];
        const received = t.received[to];
        const seen = t.resultSeen[from];
        const dispatched = t.jobSeen[to];
        if (published === undefined || received === undefined || dispatched === undefined) continue;
        out.hop.push(dispatched - published);
        out.hopToWorker.push(received - published);
        out.byHop[`${from}→${to}`]?.push(dispatched - published);
        if (seen !== undefined) {
          out.legs.resultToInbox.push(seen - published);
          out.legs.inboxToJob.push(dispatched - seen);
          out.legs.jobToWorker.push(received - dispatched);
        }
      }
      if (t.submitted !== undefined && t.received.planner !== undefined) out.submitToFirstJob.push(t.received.planner - t.submitted);
      if (t.end?.state === 'done' && t.resulted.deployer !== undefined) out.lastResultToDone.push(t.end.at - t.resulted.deployer);
      if (t.end?.state === 'done' && t.submitted !== undefined) out.taskLatency.push(t.end.at - t.submitted);
    }
    return out;
  }

  private recordEnd(taskId: string, end: TaskEnd) {
    const timeline = this.of(taskId);
    if (timeline.end !== undefined) return;
    timeline.end = end;
    this.waiters.get(taskId)?.(end);
    this.waiters.delete(taskId);
  }

  private of(taskId: string): Timeline {
    let timeline = this.timelines.get(taskId);
    if (timeline === undefined) {
      timeline = { received: {}, resulted: {}, resultSeen: {}, jobSeen: {} };
      this.timelines.set(taskId, timeline);
    }
    return timeline;
  }
}

function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // not ours to judge: the schema check that follows rejects it
  }
}
