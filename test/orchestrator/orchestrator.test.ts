import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { jetstream } from '@nats-io/jetstream';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { subjects } from '../../core/bus/subjects.js';
import type { GatePolicies } from '../../core/policy.js';
import type { TaskSpec } from '../../core/bus/messages.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { startCannedAgents } from '../helpers/canned-agents.js';
import { waitFor } from '../helpers/wait-for.js';
import type { RunningWorker } from '../../core/bus/job-worker.js';

const spec: TaskSpec = { repo: '/tmp/repo', title: 'Add a greeting', body: '', base: 'main', submittedBy: 'alice' };
const humanGates: GatePolicies = {
  plan: { approvers: ['alice', 'bob'], required: 1, autoApprove: false },
  review: { approvers: ['alice'], required: 1, autoApprove: false },
  deploy: { approvers: ['alice', 'bob'], required: 2, autoApprove: false },
};

let server: TestNatsServer;
let nc: NatsConnection;
let client: TaskClient;
let orchestrator: RunningOrchestrator;
let agents: RunningWorker[];

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  orchestrator = await startOrchestrator({ nc, log: pino({ level: 'silent' }) });
  agents = await startCannedAgents(nc);
  client = await createTaskClient(nc);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await orchestrator.stop();
  await nc.drain();
  await server.cleanup();
});

const stateOf = (taskId: string, state: string) => async () => {
  const record = await client.get(taskId).catch(() => undefined);
  return record?.state === state ? record : undefined;
};

describe('orchestrator over a real nats-server', () => {
  it('runs a task through every stage with the gates decided by approvers', async () => {
    const taskId = await client.submit({ spec, policies: humanGates, maxReviewRounds: 2 });
    await waitFor('plan gate', stateOf(taskId, 'awaitingPlanApproval'));

    const planAnswer = await client.decide({ taskId, decision: 'approve', by: 'bob', via: 'cli' });
    expect(planAnswer).toMatchObject({ status: 'applied', counted: true });
    await waitFor('deploy gate', stateOf(taskId, 'awaitingDeployApproval'));

    const first = await client.decide({ taskId, decision: 'approve', by: 'alice', via: 'cli' });
    expect(first).toMatchObject({ status: 'applied', state: 'awaitingDeployApproval', counted: true });
    const again = await client.decide({ taskId, decision: 'approve', by: 'alice', via: 'cli' });
    expect(again).toMatchObject({ counted: false, note: 'alice has already approved this gate' });
    const outsider = await client.decide({ taskId, decision: 'approve', by: 'mallory', via: 'cli' });
    expect(outsider).toMatchObject({ counted: false, note: 'mallory is not an approver for the deploy gate' });

    await client.decide({ taskId, decision: 'approve', by: 'bob', via: 'cli' });
    const done = await waitFor('done', stateOf(taskId, 'done'));
    expect(done.context.deployed).toEqual({ commit: 'c1', target: 'main' });
    expect(done.context.stages.map((s) => s.stage)).toEqual(['plan', 'implement', 'review', 'deploy']);
    expect(done.context.usage.calls).toBe(4);

    const log = [];
    for await (const entry of client.logs(taskId)) log.push(entry);
    const events = log.flatMap((e) => (e.type === 'task.event' ? [`${e.event.type}:${e.state}:${e.accepted}`] : []));
    expect(events).toEqual([
      'task.submit:planning:true',
      'plan.proposed:awaitingPlanApproval:true',
      'gate.decide:implementing:true',
      'code.committed:reviewing:true',
      'review.approved:awaitingDeployApproval:true',
      'gate.decide:awaitingDeployApproval:true',
      'gate.decide:awaitingDeployApproval:false',
      'gate.decide:awaitingDeployApproval:false',
      'gate.decide:deploying:true',
      'deploy.succeeded:done:true',
    ]);
  });

  it('refuses a decision for a task that is not at a gate, changing nothing', async () => {
    const taskId = await client.submit({ spec, policies: humanGates, maxReviewRounds: 2 });
    const at = await waitFor('plan gate', stateOf(taskId, 'awaitingPlanApproval'));
    await client.decide({ taskId, decision: 'approve', by: 'alice', via: 'cli' });
    await waitFor('deploy gate', stateOf(taskId, 'awaitingDeployApproval'));
    await expect(client.decide({ taskId, decision: 'approve', by: 'alice', via: 'cli', gate: 'plan' })).rejects.toMatchObject({
      code: 'TASK_NOT_AT_GATE',
    });
    expect(at.context.decisions).toHaveLength(0);
  });

  it('rejects an unknown task by name', async () => {
    await expect(client.get('t-nope')).rejects.toThrow('unknown task t-nope');
  });

  it('drops malformed inbox messages without stopping', async () => {
    const js = jetstream(nc);
    await js.publish(subjects.inbox('t-garbage'), 'not json');
    await js.publish(subjects.inbox('t-garbage'), JSON.stringify({ type: 'plan.proposed', taskId: 't-garbage' }));
    const taskId = await client.submit({ spec, policies: humanGates, maxReviewRounds: 2 });
    await waitFor('the next task to be planned', stateOf(taskId, 'awaitingPlanApproval'));
  });
});
