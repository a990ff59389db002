/**
 * `stagegate autoscale` end to end: the real command against a real nats-server, starting and
 * stopping real `stagegate worker planner` processes whose model calls are slow (the scripted
 * model answers each after a delay). Checked through what an operator sees: /metrics, the log
 * lines of its decisions, and each job run once.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import type { PlanRequest } from '../../core/bus/messages.js';
import { STREAMS, subjects, workerConsumer } from '../../core/bus/subjects.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { startScriptedModelServer, type ScriptedModelServer } from '../../core/scripted-model/index.js';
import { newTaskId } from '../../orchestrator/task-client.js';
import { samplePlan } from '../helpers/canned-agents.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { createSmallRepo } from '../helpers/small-repo.js';
import { startStagegateProcesses, type StagegateProcesses } from '../helpers/stagegate-processes.js';
import { waitFor } from '../helpers/wait-for.js';

const JOBS = 6;
const MODEL_DELAY_MS = 2_000;

let server: TestNatsServer;
let model: ScriptedModelServer;
let nc: NatsConnection;
let procs: StagegateProcesses | undefined;

beforeAll(async () => {
  server = await startTestNatsServer();
  model = await startScriptedModelServer({ script: { answers: {} } });
  nc = await connectBus(server.url, 'test-autoscale-cli');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
});

afterAll(async () => {
  await procs?.stop();
  await nc?.drain();
  await model?.close();
  await server?.cleanup();
});

async function gauge(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(url)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{role="planner"} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('stagegate autoscale', () => {
  it('starts planner workers under a backlog of slow jobs and stops them when idle', async () => {
    const repo = await createSmallRepo();
    for (let i = 0; i < JOBS; i++) model.enqueue('planner', { json: samplePlan, delayMs: MODEL_DELAY_MS });
    procs = await startStagegateProcesses({ natsUrl: server.url, modelUrl: model.url });
    await procs.group.start('autoscale', ['autoscale', '--roles', 'planner', '--min', '1', '--max', '3', '--interval', '200ms', '--cooldown', '1500ms', '--metrics-port', '0']);
    // Its workers' ready lines pass through its stderr too: wait for its own.
    const metricsUrl = await waitFor('the autoscaler ready line', async () => /metrics at (http:\/\/\S+\/metrics); ready/.exec((await procs?.logs()) ?? '')?.[1]);
    expect(await gauge(metricsUrl, 'stagegate_workers_running')).toBe(1);

    const js = jetstream(nc);
    const taskIds: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const taskId = newTaskId();
      const job: PlanRequest = {
        type: 'plan.request',
        taskId,
        msgId: `${taskId}:plan:1:dispatch`,
        sentAt: new Date().toISOString(),
        attempt: 1,
        task: { repo, title: 'Add a note', body: '', base: 'main', submittedBy: 'tester' },
        feedback: [],
      };
      await js.publish(subjects.job('planner'), JSON.stringify(job), { msgID: job.msgId });
      taskIds.push(taskId);
    }

    await waitFor('3 planner workers running', async () => ((await gauge(metricsUrl, 'stagegate_workers_running')) === 3 ? true : undefined), 30_000);
    const jsm = await jetstreamManager(nc);
    await waitFor('every planner job answered and acked', async () => {
      const info = await jsm.consumers.info(STREAMS.jobs, workerConsumer('planner'));
      return info.num_pending === 0 && info.num_ack_pending === 0 && model.remaining('planner') === 0 ? true : undefined;
    }, 30_000);
    await waitFor('the planner back at 1 worker', async () => {
      const [running, stopping] = await Promise.all([gauge(metricsUrl, 'stagegate_workers_running'), gauge(metricsUrl, 'stagegate_workers_stopping')]);
      return running === 1 && stopping === 0 ? true : undefined;
    }, 30_000);

    expect(model.requests.map((r) => r.taskId).sort()).toEqual([...taskIds].sort());
    expect((await jsm.consumers.info(STREAMS.jobs, workerConsumer('planner'))).num_redelivered).toBe(0);
    expect((await jsm.streams.info(STREAMS.inbox)).state.messages).toBe(JOBS);
    const decisions = (await procs.logs())
      .split('\n')
      .filter((line) => line.includes('"msg":"scaling workers"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(decisions[0]).toMatchObject({ role: 'planner', reason: 'backlog', running: 1, desired: 3 });
    // Down in steps, each to the most the last cool-down needed, the last one to min when idle
    // (the last job may still be in flight then: never more of them than the workers kept).
    const last = decisions.at(-1);
    expect(last).toMatchObject({ role: 'planner', reason: 'idle', desired: 1, pending: 0 });
    expect(last?.inFlight as number).toBeLessThanOrEqual(1);
    expect(decisions.slice(1).every((d) => d.reason === 'idle' && (d.desired as number) < (d.running as number))).toBe(true);
  }, 90_000);
});
