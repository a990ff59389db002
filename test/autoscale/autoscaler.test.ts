/**
 * The autoscaler against a real nats-server, with job workers in this process whose handler
 * takes a while (a simulated slow model call): it reads the real consumer counts, scales a role
 * up under a backlog and back down when idle, and serves what it sees on /metrics.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consumerLoadReader, startAutoscaler, type Autoscaler } from '../../cli/autoscale/autoscaler.js';
import { startMetricsServer, type MetricsServer } from '../../cli/autoscale/metrics.js';
import { createWorkerPool, inProcessLauncher, type WorkerPool } from '../../cli/autoscale/worker-pool.js';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { startJobWorker, type JobHandler } from '../../core/bus/job-worker.js';
import type { AgentRole, Job } from '../../core/bus/messages.js';
import { STREAMS, subjects, workerConsumer } from '../../core/bus/subjects.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { createLogger } from '../../core/log.js';
import { newTaskId } from '../../orchestrator/task-client.js';
import { oneCall, samplePlan } from '../helpers/canned-agents.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait-for.js';

const SLOW_CALL_MS = 300;

let server: TestNatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'test-autoscaler');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  jsm = await jetstreamManager(nc);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await nc?.drain();
  await server?.cleanup();
});

/** Log records as objects, so a test can read the decisions the autoscaler logged. */
function captureLog() {
  const records: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      records.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger({ level: 'debug', destination }), records };
}

function jobFor(role: AgentRole, taskId: string): Job {
  const envelope = { taskId, msgId: `${taskId}:${role}:1:dispatch`, sentAt: new Date().toISOString(), attempt: 1 };
  const task = { repo: '/tmp/none', title: 'Scale', body: '', base: 'main', submittedBy: 'tester' };
  switch (role) {
    case 'planner':
      return { type: 'plan.request', ...envelope, task, feedback: [] };
    case 'coder':
      return { type: 'implement.request', ...envelope, task, plan: samplePlan, branch: `stagegate/${taskId}`, round: 1, reviewComments: [], feedback: [], approvedCommands: [] };
    case 'reviewer':
      return { type: 'review.request', ...envelope, task, plan: samplePlan, branch: `stagegate/${taskId}`, commit: 'c1', round: 1, summary: 'done' };
    case 'deployer':
      return { type: 'deploy.request', ...envelope, task, branch: `stagegate/${taskId}`, commit: 'c1' };
  }
}

async function publishJobs(role: AgentRole, n: number): Promise<string[]> {
  const js = jetstream(nc);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const job = jobFor(role, newTaskId());
    await js.publish(subjects.job(role), JSON.stringify(job), { msgID: job.msgId });
    ids.push(job.msgId);
  }
  return ids;
}

/** A planner whose every job takes SLOW_CALL_MS, as a model call would; records what it ran. */
function slowPlanner(ran: string[]): JobHandler<'planner'> {
  return async (job) => {
    ran.push(job.msgId);
    await sleep(SLOW_CALL_MS);
    return { type: 'plan.proposed', plan: samplePlan, usage: oneCall };
  };
}

function inProcessPool<R extends AgentRole>(role: R, handle: JobHandler<R>, stage: 'plan' | 'review'): WorkerPool {
  const log = createLogger({ level: 'silent' });
  const start = () => startJobWorker({ nc, role, stage, handle, log, concurrency: 1, ackWaitMs: 30_000, maxDeliveries: 3 });
  return createWorkerPool(role, inProcessLauncher(start), log);
}

async function consumerOf(role: AgentRole) {
  return jsm.consumers.info(STREAMS.jobs, workerConsumer(role));
}

async function fetchMetrics(metrics: MetricsServer): Promise<string> {
  const res = await fetch(metrics.url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

function sample(text: string, name: string, role: AgentRole): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{role="${role}"} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('autoscaler with job workers in this process', () => {
  it('scales a role up under a backlog and back down to min when idle, running each job once', async () => {
    const ran: string[] = [];
    const pool = inProcessPool('planner', slowPlanner(ran), 'plan');
    const { log, records } = captureLog();
    const autoscaler: Autoscaler = await startAutoscaler({
      roles: ['planner'],
      policy: { min: 1, max: 4, jobsPerWorker: 1, cooldownMs: 800 },
      intervalMs: 100,
      readLoad: await consumerLoadReader(nc),
      pools: new Map([['planner', pool]]),
      log,
    });
    cleanups.push(() => autoscaler.stop());
    const metrics = await startMetricsServer({ host: '127.0.0.1', port: 0, status: () => autoscaler.status() });
    cleanups.push(() => metrics.close());
    expect(pool.running()).toBe(1);

    const published = await publishJobs('planner', 8);
    await waitFor('4 planner workers', async () => (pool.running() === 4 ? true : undefined), 10_000);
    const atPeak = await fetchMetrics(metrics);
    expect(sample(atPeak, 'stagegate_workers_running', 'planner')).toBe(4);
    expect(sample(atPeak, 'stagegate_workers_desired', 'planner')).toBe(4);

    await waitFor('every planner job acked', async () => {
      const info = await consumerOf('planner');
      return info.num_pending === 0 && info.num_ack_pending === 0 && ran.length === 8 ? true : undefined;
    });
    await waitFor('the planner back at 1 worker', async () => (pool.running() === 1 && pool.stopping() === 0 ? true : undefined), 10_000);

    expect([...ran].sort()).toEqual([...published].sort());
    expect((await consumerOf('planner')).num_redelivered).toBe(0);
    const decisions = records.filter((r) => r.msg === 'scaling workers');
    expect(decisions[0]).toMatchObject({ role: 'planner', reason: 'backlog', running: 1 });
    expect(decisions[0]?.pending).toBeGreaterThan(0);
    // Down in steps (each to the most the last cool-down needed), the last one to min when idle.
    expect(decisions.at(-1)).toMatchObject({ role: 'planner', reason: 'idle', desired: 1, pending: 0, inFlight: 0 });
    const downs = decisions.filter((d) => d.reason === 'idle');
    expect(downs.every((d) => (d.desired as number) < (d.running as number))).toBe(true);
    expect(decisions.every((d) => d.reason === 'backlog' || d.reason === 'idle')).toBe(true);
    const finalMetrics = await fetchMetrics(metrics);
    expect(sample(finalMetrics, 'stagegate_workers_running', 'planner')).toBe(1);
    expect(sample(finalMetrics, 'stagegate_jobs_pending', 'planner')).toBe(0);
  });

  it('serves the backlog and the desired count on /metrics when it runs no workers itself', async () => {
    const autoscaler = await startAutoscaler({
      roles: ['coder', 'deployer'],
      policy: { min: 1, max: 8, jobsPerWorker: 2, cooldownMs: 60_000 },
      intervalMs: 50,
      readLoad: await consumerLoadReader(nc),
      log: createLogger({ level: 'silent' }),
    });
    cleanups.push(() => autoscaler.stop());
    const metrics = await startMetricsServer({ host: '127.0.0.1', port: 0, status: () => autoscaler.status() });
    cleanups.push(() => metrics.close());

    await publishJobs('coder', 5);
    const text = await waitFor('the coder backlog on /metrics', async () => {
      const body = await fetchMetrics(metrics);
      return sample(body, 'stagegate_jobs_pending', 'coder') === 5 ? body : undefined;
    });

    expect(sample(text, 'stagegate_jobs_in_flight', 'coder')).toBe(0);
    expect(sample(text, 'stagegate_workers_desired', 'coder')).toBe(3);
    expect(sample(text, 'stagegate_workers_desired', 'deployer')).toBe(1);
    expect(text).not.toContain('stagegate_workers_running');
    expect(text).toContain('# TYPE stagegate_workers_desired gauge');
    expect((await fetch(metrics.url.replace('/metrics', '/healthz'))).status).toBe(200);
    expect((await fetch(metrics.url.replace('/metrics', '/nope'))).status).toBe(404);
  });

  it('lets a worker told to stop finish the job in hand: the job is acked, not redelivered', async () => {
    const started: string[] = [];
    const finished: string[] = [];
    const reviewer: JobHandler<'reviewer'> = async (job) => {
      started.push(job.msgId);
      await sleep(SLOW_CALL_MS);
      finished.push(job.msgId);
      return { type: 'review.approved', testsPassed: true, verdict: { decision: 'approve', summary: 'fine', comments: [] }, usage: oneCall };
    };
    const pool = inProcessPool('reviewer', reviewer, 'review');
    cleanups.push(() => pool.stopAll());
    await pool.scaleTo(2);
    await publishJobs('reviewer', 2);
    await waitFor('both reviewer jobs started', async () => (started.length === 2 ? true : undefined));

    await pool.scaleTo(0);
    expect(pool.running()).toBe(0);
    expect(pool.stopping()).toBe(2);
    await waitFor('both stopped workers gone', async () => (pool.stopping() === 0 ? true : undefined));

    expect(finished).toHaveLength(2);
    const info = await consumerOf('reviewer');
    expect({ pending: info.num_pending, inFlight: info.num_ack_pending, redelivered: info.num_redelivered }).toEqual({ pending: 0, inFlight: 0, redelivered: 0 });
  });
});
