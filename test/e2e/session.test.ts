/**
 * Sessions against a real nats-server and real orchestrator processes, with in-process agents
 * that take a while per job: a backlog of five items runs in dependency order with at most K
 * tasks at once; a failure (here a stage that runs past its timeout) gets a backlog revision;
 * a budget pauses the session with a report; and a SIGKILLed orchestrator loses nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { JobHandler, RunningWorker } from '../../core/bus/job-worker.js';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { TaskLogEntry, type Backlog, type Usage } from '../../core/bus/messages.js';
import type { SessionSpec } from '../../core/bus/session-messages.js';
import { STREAMS, subjects } from '../../core/bus/subjects.js';
import { ensureTopology } from '../../core/bus/topology.js';
import type { GatePolicies } from '../../core/policy.js';
import type { SessionRecord } from '../../core/session-record.js';
import { createSessionClient, type SessionClient } from '../../orchestrator/sessions/session-client.js';
import { cannedHandlers, startCannedAgents } from '../helpers/canned-agents.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { startStagegateProcesses, type StagegateProcesses } from '../helpers/stagegate-processes.js';
import { waitFor } from '../helpers/wait-for.js';

const auto = { approvers: ['tester'], required: 1, autoApprove: true };
const policies: GatePolicies = { plan: auto, review: auto, deploy: auto };
const JOB_MS = 150;
const tokens = (n: number): Usage => ({ calls: 1, inputTokens: n, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 });

/** a ← b, a ← c, (b, c) ← d, e alone. */
const fiveItems: Backlog = {
  summary: 'five steps',
  items: [
    { id: 'a', title: 'A', body: 'do a', dependsOn: [] },
    { id: 'b', title: 'B', body: 'do b', dependsOn: ['a'] },
    { id: 'c', title: 'C', body: 'do c', dependsOn: ['a'] },
    { id: 'd', title: 'D', body: 'do d', dependsOn: ['b', 'c'] },
    { id: 'e', title: 'E', body: 'do e', dependsOn: [] },
  ],
};

let server: TestNatsServer;
let nc: NatsConnection;
let sessions: SessionClient;
let procs: StagegateProcesses;
let agents: RunningWorker[] = [];
let backlogJobs: { revision: number; reason?: string }[] = [];
/** Ends a job the test made hang, so stopping the agents does not wait for it. */
let release = new AbortController();

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 5_000, jobMaxDeliveries: 3, updateExisting: true });
  sessions = await createSessionClient(nc);
});

afterEach(async () => {
  release.abort();
  release = new AbortController();
  await procs?.stop();
  await Promise.all(agents.map((a) => a.stop()));
  agents = [];
  backlogJobs = [];
});

afterAll(async () => {
  await nc?.drain();
  await server?.cleanup();
});

/** Agents that take JOB_MS per job and spend 100 tokens each; the planner answers backlog jobs with `backlog`. */
async function startAgents(backlog: Backlog, coder?: JobHandler<'coder'>) {
  const slow = <R extends 'planner' | 'coder' | 'reviewer' | 'deployer'>(handler: JobHandler<R>): JobHandler<R> => async (job, ctx) => {
    await sleep(JOB_MS);
    return { ...(await handler(job, ctx)), usage: tokens(100) };
  };
  agents = await startCannedAgents(nc, {
    planner: slow(async (job, ctx) => {
      if (job.type !== 'backlog.request') return cannedHandlers.planner(job, ctx);
      backlogJobs.push({ revision: job.revision, ...(job.reason === undefined ? {} : { reason: job.reason }) });
      return { type: 'backlog.proposed', backlog, usage: tokens(100) };
    }),
    coder: slow(coder ?? cannedHandlers.coder),
    reviewer: slow(cannedHandlers.reviewer),
    deployer: slow(cannedHandlers.deployer),
  });
}

async function startSession(overrides: Partial<SessionSpec> = {}): Promise<string> {
  const spec: SessionSpec = {
    repo: '/tmp/not-cloned-by-canned-agents',
    goal: 'migrate the API to v2',
    base: 'main',
    submittedBy: 'tester',
    parallel: 2,
    budget: {},
    onBudget: 'finish',
    maxItemAttempts: 2,
    maxRevisions: 5,
    digestTo: {},
    pricing: {},
    models: { planner: 'm', coder: 'm', reviewer: 'm', deployer: 'm' },
    ...overrides,
  };
  return sessions.start({ spec, policies, maxReviewRounds: 1 });
}

const inState = (sessionId: string, ...states: SessionRecord['state'][]) => async () => {
  const record = await sessions.get(sessionId).catch(() => undefined);
  return record !== undefined && states.includes(record.state) ? record : undefined;
};

/** Every task event of the session's tasks, in the order the log stream stored them. */
async function taskEvents(sessionId: string): Promise<{ taskId: string; state: string; type: string }[]> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(STREAMS.log, { filter_subjects: subjects.allTaskEvents, deliver_policy: DeliverPolicy.All });
  const out: { taskId: string; state: string; type: string }[] = [];
  let pending = (await consumer.info(true)).num_pending;
  while (pending > 0) {
    const m = await consumer.next({ expires: 2_000 });
    if (m === null) break;
    const entry = TaskLogEntry.parse(JSON.parse(m.string()));
    if (entry.type === 'task.event' && entry.taskId.startsWith(`${sessionId}-`) && entry.accepted) out.push({ taskId: entry.taskId, state: entry.state, type: entry.event.type });
    pending = m.info.pending;
  }
  await consumer.delete();
  return out;
}

/** Checks, over the stored order of events, that no task started before its dependencies were done and that at most `k` ran at once. */
function expectDependencyOrder(events: { taskId: string; state: string; type: string }[], sessionId: string, k: number) {
  const itemOf = (taskId: string) => taskId.slice(sessionId.length + 1).replace(/-\d+$/, '');
  const done = new Set<string>();
  const running = new Set<string>();
  let most = 0;
  for (const e of events) {
    const item = itemOf(e.taskId);
    if (e.type === 'task.submit') {
      const deps = fiveItems.items.find((i) => i.id === item)?.dependsOn ?? [];
      expect(deps.filter((d) => !done.has(d)), `${item} started before its dependencies`).toEqual([]);
      running.add(e.taskId);
      most = Math.max(most, running.size);
    }
    if (['done', 'failed', 'cancelled'].includes(e.state)) {
      running.delete(e.taskId);
      if (e.state === 'done') done.add(item);
    }
  }
  expect(most).toBeLessThanOrEqual(k);
  expect(most).toBe(k);
  expect([...done].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
}

describe('a session', () => {
  it('runs a backlog of five items in dependency order with at most K at once', async () => {
    procs = await startStagegateProcesses({ natsUrl: server.url, modelUrl: 'http://127.0.0.1:9/v1' });
    await procs.orchestrator();
    await startAgents(fiveItems);
    const sessionId = await startSession({ parallel: 2 });

    const record = await waitFor('the session to complete', inState(sessionId, 'completed'), 60_000);
    expect(record.context.items.map((i) => [i.id, i.status, i.attempts])).toEqual(fiveItems.items.map((i) => [i.id, 'done', 1]));
    expectDependencyOrder(await taskEvents(sessionId), sessionId, 2);
    // 1 backlog call + 5 tasks × 4 stages, 100 tokens each.
    expect(record.context.usage.inputTokens).toBe(2_100);
    const log = await sessions.log(sessionId);
    expect(log.find((e) => e.type === 'session.digest' && e.reason === 'completed')).toBeDefined();
  });

  it('fails a stage that runs past its timeout, revises the backlog with that outcome, and finishes with the retried item', async () => {
    procs = await startStagegateProcesses({ natsUrl: server.url, modelUrl: 'http://127.0.0.1:9/v1' });
    await procs.orchestrator();
    // The first coder job of item c never ends (it keeps heart-beating): only the stage timeout can move it.
    await startAgents(fiveItems, async (job, ctx) => {
      if (job.task.session?.item === 'c' && job.taskId.endsWith('-1')) await sleep(60_000, undefined, { signal: release.signal }).catch(() => undefined);
      return cannedHandlers.coder(job, ctx);
    });
    const sessionId = await startSession({ parallel: 3, stageTimeoutsMs: { implement: 2_000 } });

    const record = await waitFor('the session to complete', inState(sessionId, 'completed'), 60_000);
    const c = record.context.items.find((i) => i.id === 'c');
    expect(c).toMatchObject({ status: 'done', attempts: 2, taskId: `${sessionId}-c-2` });
    expect(record.context.revisions.map((r) => r.revision)).toEqual([1, 2]);
    expect(backlogJobs[1]?.reason).toMatch(/c failed \(attempt 1\): task .*-c-1 failed: the implement stage ran past its timeout \(2 s\)/);
    expect(record.context.items.find((i) => i.id === 'd')?.status).toBe('done');
  });

  it('pauses at its token budget with a report, lets running tasks finish, and completes once resumed with a higher budget', async () => {
    procs = await startStagegateProcesses({ natsUrl: server.url, modelUrl: 'http://127.0.0.1:9/v1' });
    await procs.orchestrator();
    await startAgents(fiveItems);
    const sessionId = await startSession({ parallel: 2, budget: { tokens: 900 } });

    const paused = await waitFor('the session to pause', inState(sessionId, 'paused'), 60_000);
    expect(paused.context.pause).toMatchObject({ kind: 'budget', reason: expect.stringContaining('token budget (900 tokens') });
    const report = (await sessions.log(sessionId)).find((e) => e.type === 'session.digest' && e.reason === 'paused');
    expect(report?.type === 'session.digest' && report.text).toMatch(/Remaining/);

    // Running tasks finish; nothing new starts.
    const settled = await waitFor(
      'running tasks to finish',
      async () => {
        const r = await sessions.get(sessionId);
        return r.context.items.every((i) => i.status !== 'running') ? r : undefined;
      },
      30_000,
    );
    const started = settled.context.items.filter((i) => i.attempts > 0).map((i) => i.id);
    await sleep(500);
    expect((await sessions.get(sessionId)).context.items.filter((i) => i.attempts > 0).map((i) => i.id)).toEqual(started);
    expect(started.length).toBeLessThan(5);

    await sessions.resume(sessionId, 'tester', { tokens: 100_000 });
    const record = await waitFor('the session to complete', inState(sessionId, 'completed'), 60_000);
    expect(record.context.items.every((i) => i.status === 'done' && i.attempts === 1)).toBe(true);
  });

  it('completes with nothing lost or run twice when its orchestrator is SIGKILLed mid-session', async () => {
    procs = await startStagegateProcesses({ natsUrl: server.url, modelUrl: 'http://127.0.0.1:9/v1' });
    const first = await procs.orchestrator();
    await startAgents(fiveItems);
    const sessionId = await startSession({ parallel: 2 });

    await waitFor('some items to be done', async () => {
      const r = await sessions.get(sessionId).catch(() => undefined);
      return r !== undefined && r.context.items.some((i) => i.status === 'done') ? true : undefined;
    });
    await procs.kill(first);
    await sleep(JOB_MS * 3);
    await procs.orchestrator();

    const record = await waitFor('the session to complete', inState(sessionId, 'completed'), 60_000);
    expect(record.context.items.map((i) => [i.id, i.status, i.attempts])).toEqual(fiveItems.items.map((i) => [i.id, 'done', 1]));
    expect(backlogJobs).toHaveLength(1);
    expectDependencyOrder(await taskEvents(sessionId), sessionId, 2);
    const submits = (await taskEvents(sessionId)).filter((e) => e.type === 'task.submit').map((e) => e.taskId);
    expect(new Set(submits).size).toBe(submits.length);
  });
});

describe('a session across a nats-server restart', () => {
  it('completes with every item run once when nats-server restarts mid-session', async () => {
    procs = await startStagegateProcesses({ natsUrl: server.url, modelUrl: 'http://127.0.0.1:9/v1' });
    await procs.orchestrator();
    await startAgents(fiveItems);
    const sessionId = await startSession({ parallel: 2 });

    await waitFor('an item to be done', async () => {
      const r = await sessions.get(sessionId).catch(() => undefined);
      return r !== undefined && r.context.items.some((i) => i.status === 'done') ? true : undefined;
    });
    await server.restart();

    const record = await waitFor('the session to complete', inState(sessionId, 'completed'), 90_000);
    expect(record.context.items.map((i) => [i.id, i.status, i.attempts])).toEqual(fiveItems.items.map((i) => [i.id, 'done', 1]));
    expect(backlogJobs).toHaveLength(1);
  });
});

describe('session commands', () => {
  it('refuses an unknown session with a clear error', async () => {
    await expect(sessions.pause('s-nope', 'tester')).rejects.toThrow('unknown session s-nope');
  });
});
