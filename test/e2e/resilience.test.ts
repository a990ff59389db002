/**
 * Killing processes at the worst moments loses no task and duplicates no job: every claim here
 * is checked against what the scripted model saw (one request per task and role) and the
 * task's own record (each stage once).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { ORCHESTRATOR_CONSUMER, STREAMS } from '../../core/bus/subjects.js';
import type { AgentRole } from '../../core/bus/messages.js';
import { ensureTopology } from '../../core/bus/topology.js';
import type { GatePolicies } from '../../core/policy.js';
import { startScriptedModelServer, type ScriptedModelServer } from '../../core/scripted-model/index.js';
import type { TaskRecord } from '../../core/task-record.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { createSmallRepo, smallRepoAnswers, smallRepoReviews } from '../helpers/small-repo.js';
import { startStagegateProcesses, type StagegateProcesses } from '../helpers/stagegate-processes.js';
import { waitFor } from '../helpers/wait-for.js';

const auto = { approvers: ['tester'], required: 1, autoApprove: true };
const policies: GatePolicies = { plan: auto, review: auto, deploy: auto };
const ACK_WAIT_MS = 1_500;

let server: TestNatsServer;
let model: ScriptedModelServer;
let nc: NatsConnection;
let client: TaskClient;
let procs: StagegateProcesses;

beforeAll(async () => {
  server = await startTestNatsServer();
  model = await startScriptedModelServer({ script: { answers: {} } });
  nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: ACK_WAIT_MS, jobMaxDeliveries: 3, updateExisting: true });
  client = await createTaskClient(nc);
});

afterEach(async () => {
  await procs?.stop();
});

afterAll(async () => {
  await nc?.drain();
  await model?.close();
  await server?.cleanup();
});

async function start() {
  procs = await startStagegateProcesses({
    natsUrl: server.url,
    modelUrl: model.url,
    env: { STAGEGATE_JOB_ACK_WAIT_MS: String(ACK_WAIT_MS) },
  });
  return procs;
}

async function submit(): Promise<string> {
  return client.submit({
    spec: { repo: await createSmallRepo(), title: 'Add a note', body: '', base: 'main', submittedBy: 'tester' },
    policies,
    maxReviewRounds: 2,
  });
}

const finished = (taskId: string) => async () => {
  const record = await client.get(taskId);
  return ['done', 'failed', 'cancelled'].includes(record.state) ? record : undefined;
};

/** Model calls of each role when every stage runs once: a review is a verdict and a security review. */
const CALLS_PER_RUN = { planner: 1, coder: 1, reviewer: 2 } as const;

function requestsFor(taskId: string, role: AgentRole): number {
  return model.requests.filter((r) => r.taskId === taskId && r.role === role).length;
}

function expectRanOnce(record: TaskRecord) {
  expect(record.state).toBe('done');
  expect(record.context.stages.map((s) => `${s.stage}#${s.attempt}`)).toEqual(['plan#1', 'implement#1', 'review#1', 'deploy#1']);
}

describe('crashes and concurrency', () => {
  it('runs tasks with two orchestrators at once and dispatches each job exactly once', async () => {
    const p = await start();
    await p.orchestrator();
    await p.orchestrator();
    await Promise.all((['planner', 'coder', 'reviewer', 'deployer'] as const).map((role) => p.worker(role, ['--concurrency', '4'])));
    const count = 8;
    model.enqueue('planner', ...Array(count).fill(smallRepoAnswers.planner));
    model.enqueue('coder', ...Array(count).fill(smallRepoAnswers.coder));
    model.enqueue('reviewer', ...smallRepoReviews(count));

    const taskIds = await Promise.all(Array.from({ length: count }, submit));
    const records = await Promise.all(taskIds.map((id) => waitFor(`task ${id} to finish`, finished(id), 60_000)));
    for (const record of records) {
      expectRanOnce(record);
      for (const role of ['planner', 'coder', 'reviewer'] as const) expect(requestsFor(record.context.taskId, role)).toBe(CALLS_PER_RUN[role]);
    }
    // Both orchestrators did part of the work.
    const logs = await p.logs();
    const applying = new Set(logs.split('\n').filter((l) => l.includes('"event applied"')).map((l) => JSON.parse(l).pid as number));
    expect(applying.size).toBe(2);
  });

  it('finishes a task exactly once when its only orchestrator is SIGKILLed mid-task', async () => {
    const p = await start();
    const first = await p.orchestrator();
    await Promise.all((['planner', 'coder', 'reviewer', 'deployer'] as const).map((role) => p.worker(role)));
    model.enqueue('planner', smallRepoAnswers.planner);
    model.enqueue('coder', async (request) => ({ ...smallRepoAnswers.coder(request), delayMs: 1_500 }));
    model.enqueue('reviewer', ...smallRepoReviews());

    const taskId = await submit();
    await waitFor('the coder to ask the model', async () => (requestsFor(taskId, 'coder') > 0 ? true : undefined));
    await p.kill(first);
    // The coder's result arrives while no orchestrator runs; it waits in the inbox.
    const jsm = await jetstreamManager(nc);
    await waitFor('the coder result to wait in the inbox', async () => {
      const inbox = await jsm.consumers.info(STREAMS.inbox, ORCHESTRATOR_CONSUMER);
      return inbox.num_pending + inbox.num_ack_pending > 0 ? true : undefined;
    });
    expect((await client.get(taskId)).state).toBe('implementing');
    await p.orchestrator();

    const record = await waitFor('the task to finish', finished(taskId), 60_000);
    expectRanOnce(record);
    for (const role of ['planner', 'coder', 'reviewer'] as const) expect(requestsFor(taskId, role)).toBe(CALLS_PER_RUN[role]);
  });

  it('hands the job of a SIGKILLed worker to another worker and finishes the task exactly once', async () => {
    const p = await start();
    await p.orchestrator();
    const workers = await Promise.all((['planner', 'coder', 'reviewer', 'deployer'] as const).map((role) => p.worker(role)));
    model.enqueue('planner', smallRepoAnswers.planner);
    // The first coder never gets its answer: it is killed while waiting for it.
    model.enqueue('coder', async (request) => ({ ...smallRepoAnswers.coder(request), delayMs: 30_000 }), smallRepoAnswers.coder);
    model.enqueue('reviewer', ...smallRepoReviews());

    const taskId = await submit();
    await waitFor('the first coder to ask the model', async () => (requestsFor(taskId, 'coder') === 1 ? true : undefined));
    await p.kill(workers[1]!);
    await p.worker('coder');

    const record = await waitFor('the task to finish', finished(taskId), 60_000);
    expectRanOnce(record);
    expect(requestsFor(taskId, 'coder')).toBe(2);
    const committed: string[] = [];
    for await (const entry of client.logs(taskId)) {
      if (entry.type === 'task.event' && entry.event.type === 'code.committed') committed.push(`${entry.event.jobId}:${entry.accepted}`);
    }
    expect(committed).toEqual([`${taskId}:implement:1:true`]);
  });
});
