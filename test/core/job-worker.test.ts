import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { startJobWorker, type RunningWorker } from '../../core/bus/job-worker.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait-for.js';

const silent = pino({ level: 'silent' });
const gate = { approvers: ['tester'], required: 1, autoApprove: false };
let server: TestNatsServer;
let nc: NatsConnection;
let orchestrator: RunningOrchestrator;
let client: TaskClient;
let worker: RunningWorker | undefined;

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 600, jobMaxDeliveries: 1, updateExisting: true });
  orchestrator = await startOrchestrator({ nc, log: silent });
  client = await createTaskClient(nc);
});

afterAll(async () => {
  await orchestrator?.stop();
  await nc?.drain();
  await server?.cleanup();
});

describe('job worker', () => {
  it('lets go of a job that runs past its deadline, so the task fails with the reason instead of waiting forever', async () => {
    const hanging = new Promise<never>(() => {});
    worker = await startJobWorker({
      nc,
      role: 'planner',
      stage: 'plan',
      handle: () => hanging,
      log: silent,
      concurrency: 2,
      ackWaitMs: 600,
      maxDeliveries: 1,
      maxJobMs: 300,
    });
    const taskId = await client.submit({
      spec: { repo: '/tmp/none', title: 'hangs', body: '', base: 'main', submittedBy: 'tester' },
      policies: { plan: gate, review: gate, deploy: gate },
      maxReviewRounds: 1,
    });
    const failed = await waitFor('the task to fail', async () => {
      const record = await client.get(taskId);
      return record.state === 'failed' ? record : undefined;
    });
    expect(failed.context.error).toEqual({ stage: 'plan', reason: expect.stringContaining('delivered 1 times and no worker finished it') });
    // The hanging handler still holds its loop; stopping waits for it, so the test does not.
    void worker.stop();
  });
});
