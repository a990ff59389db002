/**
 * Faults a running pipeline meets, each against a real nats-server and the scripted model:
 * model output that breaks the schema, patches that do not apply, malformed bus messages,
 * a decision delivered twice, a job whose workers keep dying, and a NATS restart mid-task.
 * The agents are the real handlers (cli/agent-handlers.ts); only the restart test needs the
 * process boundary, so only it spawns the real processes.
 */
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../../cli/agent-handlers.js';
import { SLUGIFY_PATCH } from '../../cli/demo/demo-script.js';
import { createSampleRepo } from '../../cli/demo/sample-repo.js';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { listDeadLetters } from '../../core/bus/dead-letters.js';
import { startJobWorker, type RunningWorker } from '../../core/bus/job-worker.js';
import { Job, STAGE_OF_ROLE, type AgentRole, type GateDecide, type Plan, type TaskLogEntry, type Verdict } from '../../core/bus/messages.js';
import { STREAMS, subjects, workerConsumer } from '../../core/bus/subjects.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { loadConfig, type Config } from '../../core/config.js';
import { createLogger, type Logger } from '../../core/log.js';
import type { GatePolicies, GatePolicy } from '../../core/policy.js';
import { startScriptedModelServer, type ScriptedModelServer } from '../../core/scripted-model/index.js';
import type { TaskRecord, TaskState } from '../../core/task-record.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { startStagegateProcesses, type StagegateProcesses } from '../helpers/stagegate-processes.js';
import { noFindings } from '../helpers/small-repo.js';
import { waitFor } from '../helpers/wait-for.js';

const auto: GatePolicy = { approvers: ['tester'], required: 1, autoApprove: true };
const manual: GatePolicy = { approvers: ['tester'], required: 1, autoApprove: false };
const autoGates: GatePolicies = { plan: auto, review: auto, deploy: auto };

const plan: Plan = {
  summary: 'Add slugify(title) to src/textkit.js.',
  steps: [{ title: 'Implement slugify', detail: 'lower-case, dashes between words' }],
  filesToTouch: ['src/textkit.js'],
  risks: [],
  acceptanceChecks: ['npm test passes'],
};

/** Context the sample repository does not have: it can never apply. */
const patchWithMissingContext = `*** Begin Patch
*** Update File: src/textkit.js
@@
 export function slugify(title) {
-  return title;
+  return title.toLowerCase();
 }
*** End Patch`;

const approve: Verdict = { decision: 'approve', summary: 'slugify works and the tests pass.', comments: [] };

/** One coder turn: a tool call per entry, made in that order. */
function coderTurn(id: string, ...calls: Array<[name: string, args: Record<string, unknown>]>) {
  return {
    output: calls.map(([name, args], i) => ({ type: 'function_call', id: `fc_${id}_${i}`, call_id: `call_${id}_${i}`, name, arguments: JSON.stringify(args) })),
  };
}

/** The whole coder job in one turn: the patch, then finish (the tests run and pass). */
const codeAnswer = coderTurn('code', ['apply_patch', { patch: SLUGIFY_PATCH }], ['finish', { summary: 'Added slugify.' }]);

let server: TestNatsServer;
let model: ScriptedModelServer;
let nc: NatsConnection;
let client: TaskClient;

beforeAll(async () => {
  server = await startTestNatsServer();
  model = await startScriptedModelServer({ script: { answers: {} } });
  nc = await connectBus(server.url, 'faults-test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 2, updateExisting: true });
  client = await createTaskClient(nc);
});

afterAll(async () => {
  await nc?.drain();
  await model?.close();
  await server?.cleanup();
});

async function sampleRepo(): Promise<string> {
  return createSampleRepo(join(await mkdtemp(join(tmpdir(), 'sg-faults-repo-')), 'textkit'));
}

async function submitTask(repo: string, policies: GatePolicies = autoGates): Promise<string> {
  return client.submit({
    spec: { repo, title: 'Add slugify(title) to textkit', body: '', base: 'main', submittedBy: 'tester' },
    policies,
    maxReviewRounds: 2,
  });
}

/** Waits until the task is in one of `states` (list the terminal ones too, to fail fast). */
function settled(taskId: string, what: string, states: TaskState[], timeoutMs = 60_000): Promise<TaskRecord> {
  return waitFor(
    `task ${taskId} ${what}`,
    async () => {
      const record = await client.get(taskId);
      return states.includes(record.state) ? record : undefined;
    },
    timeoutMs,
  );
}

function requestsOf(role: AgentRole, taskId: string) {
  return model.requests.filter((r) => r.role === role && r.taskId === taskId);
}

async function readLog(taskId: string): Promise<TaskLogEntry[]> {
  const entries: TaskLogEntry[] = [];
  for await (const entry of client.logs(taskId)) entries.push(entry);
  return entries;
}

describe('faults, with the orchestrator and the real agent handlers in this process', () => {
  let workDir: string;
  let config: Readonly<Config>;
  let svc: NatsConnection;
  let log: Logger;
  const logLines: Array<Record<string, unknown>> = [];
  let orchestrator: RunningOrchestrator;
  const workers = new Map<AgentRole, RunningWorker>();

  const startWorker = async <R extends AgentRole>(role: R, options: { ackWaitMs?: number } = {}) => {
    const worker = await startJobWorker({
      nc: svc,
      role,
      stage: STAGE_OF_ROLE[role],
      handle: createHandler(role, config, log.child({ role })),
      log: log.child({ role }),
      concurrency: 1,
      ackWaitMs: options.ackWaitMs ?? config.jobs.ackWaitMs,
      maxDeliveries: config.jobs.maxDeliveries,
    });
    workers.set(role, worker);
  };

  beforeAll(async () => {
    workDir = join(await mkdtemp(join(tmpdir(), 'sg-faults-')), 'work');
    config = loadConfig({
      env: {
        NATS_URL: server.url,
        OPENAI_API_KEY: 'test-key',
        OPENAI_BASE_URL: model.url,
        STAGEGATE_WORK_DIR: workDir,
        STAGEGATE_USER: 'tester',
        STAGEGATE_CODER_MAX_TURNS: '2',
        STAGEGATE_JOB_MAX_DELIVERIES: '2',
        STAGEGATE_MODEL_MAX_RETRIES: '0',
      },
    });
    log = createLogger({
      level: 'info',
      destination: { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) },
    });
    svc = await connectBus(server.url, 'faults-services');
    orchestrator = await startOrchestrator({ nc: svc, log: log.child({ name: 'orchestrator' }) });
    for (const role of ['planner', 'coder', 'reviewer', 'deployer'] as const) await startWorker(role);
  });

  afterAll(async () => {
    await Promise.all([...workers.values()].map((w) => w.stop()));
    await orchestrator?.stop();
    await svc?.drain();
  });

  it('fails the plan stage after one repair round when the planner twice replies with something other than JSON', async () => {
    model.enqueue('planner', { text: 'Sure! Here is my plan: add slugify.' }, { text: 'Plan: 1. write slugify 2. test it' });
    const taskId = await submitTask(await sampleRepo());

    const failed = await settled(taskId, 'to fail', ['failed', 'awaitingPlanApproval', 'implementing', 'done']);
    expect(failed.state).toBe('failed');
    expect(failed.context.error?.stage).toBe('plan');
    expect(failed.context.error?.reason).toMatch(new RegExp(`^planner reply for task ${taskId}: not valid JSON`));

    const planner = requestsOf('planner', taskId);
    expect(planner).toHaveLength(2);
    const repair = JSON.stringify(planner[1]?.body.input);
    expect(repair).toContain('Your previous reply does not match the required JSON schema: not valid JSON');
    expect(repair).toContain('Sure! Here is my plan');
    expect(model.remaining()).toBe(0);
  });

  it('tells the coder why its patch was rejected, then fails the task at its turn limit leaving the worktree to inspect', async () => {
    model.enqueue('planner', { json: plan });
    model.enqueue(
      'coder',
      coderTurn('first', ['apply_patch', { patch: patchWithMissingContext }]),
      coderTurn('second', ['apply_patch', { patch: patchWithMissingContext }]),
    );
    const taskId = await submitTask(await sampleRepo());

    const failed = await settled(taskId, 'to fail', ['failed', 'reviewing', 'done']);
    expect(failed.state).toBe('failed');
    expect(failed.context.error?.stage).toBe('implement');
    const worktree = join(workDir, taskId, 'implement-1');
    expect(failed.context.error?.reason).toBe(`coder stopped at the turn limit (2 turns) after 2 turns; nothing was changed; worktree left at ${worktree}`);
    expect((await stat(join(worktree, '.git'))).isDirectory()).toBe(true);

    const coder = requestsOf('coder', taskId);
    expect(coder).toHaveLength(2);
    expect(JSON.stringify(coder[0]?.body.input)).not.toContain('the patch was not applied');
    const second = JSON.stringify(coder[1]?.body.input);
    expect(second).toContain("error: the patch was not applied, nothing was changed: cannot apply chunk 1 of 1 to 'src/textkit.js'");
    expect(model.remaining()).toBe(0);
  });

  it('keeps malformed messages on a job subject and the inbox as dead letters, and keeps working', async () => {
    const js = jetstream(nc);
    const garbageTask = 't-garbage';
    await js.publish(subjects.job('coder'), 'not json at all');
    await js.publish(subjects.job('coder'), JSON.stringify({ type: 'implement.request', taskId: garbageTask }));
    await js.publish(subjects.inbox(garbageTask), '{"type": "plan.prop');
    await js.publish(subjects.inbox(garbageTask), JSON.stringify({ type: 'gate.decide', taskId: garbageTask, by: 'tester' }));

    const rejected = (msg: string, subject: string) => logLines.filter((l) => l.msg === msg && l.subject === subject);
    const jobLines = await waitFor('the coder worker to log both malformed jobs', async () => {
      const lines = rejected('malformed job rejected', subjects.job('coder'));
      return lines.length >= 2 ? lines : undefined;
    });
    expect(jobLines.map((l) => l.reason)).toEqual([
      expect.stringMatching(/^job on sg\.jobs\.coder: not valid JSON/),
      expect.stringMatching(/^job on sg\.jobs\.coder: .*msgId/),
    ]);
    const inboxLines = await waitFor('the orchestrator to log both malformed inbox messages', async () => {
      const lines = rejected('malformed inbox message rejected', subjects.inbox(garbageTask));
      return lines.length >= 2 ? lines : undefined;
    });
    expect(inboxLines.map((l) => l.reason)).toEqual([
      expect.stringMatching(/^message on sg\.inbox\.t-garbage: not valid JSON/),
      expect.stringMatching(/^message on sg\.inbox\.t-garbage: .*gate/),
    ]);

    // Kept with why, and gone from the work queues: not left to come back after every ack wait.
    const kept = await waitFor('the four kept as dead letters', async () => {
      const letters = await listDeadLetters(nc);
      return letters.length >= 4 ? letters : undefined;
    });
    expect(kept.map((l) => l.subject).sort()).toEqual([subjects.inbox(garbageTask), subjects.inbox(garbageTask), subjects.job('coder'), subjects.job('coder')]);
    expect(kept.find((l) => l.subject === subjects.job('coder'))).toMatchObject({ data: 'not json at all', consumer: workerConsumer('coder') });
    const jsm = await jetstreamManager(nc);
    await waitFor(
      'the malformed messages to leave the jobs and inbox streams',
      async () => {
        const [jobs, inbox] = await Promise.all([jsm.streams.info(STREAMS.jobs), jsm.streams.info(STREAMS.inbox)]);
        return jobs.state.messages === 0 && inbox.state.messages === 0 ? true : undefined;
      },
      5_000,
    );

    model.enqueue('planner', { json: plan });
    model.enqueue('coder', codeAnswer);
    model.enqueue('reviewer', { json: approve }, { json: noFindings });
    const taskId = await submitTask(await sampleRepo());
    const done = await settled(taskId, 'to be done', ['done', 'failed', 'cancelled']);
    expect(done.state).toBe('done');
    expect(model.remaining()).toBe(0);
  });

  it('moves a task past its gate once when the same approval arrives twice, and refuses a second one', async () => {
    model.enqueue('planner', { json: plan });
    model.enqueue('coder', codeAnswer);
    model.enqueue('reviewer', { json: approve }, { json: noFindings });
    const taskId = await submitTask(await sampleRepo(), { plan: manual, review: auto, deploy: auto });
    await settled(taskId, 'to wait at the plan gate', ['awaitingPlanApproval', 'failed']);

    const js = jetstream(nc);
    const approval: GateDecide = {
      type: 'gate.decide',
      taskId,
      msgId: `${taskId}:decision:once`,
      sentAt: new Date().toISOString(),
      gate: 'plan',
      decision: 'approve',
      by: 'tester',
      via: 'cli',
    };
    const payload = JSON.stringify(approval);
    const first = await js.publish(subjects.inbox(taskId), payload, { msgID: approval.msgId });
    const again = await js.publish(subjects.inbox(taskId), payload, { msgID: approval.msgId });
    expect(first.duplicate).toBe(false);
    expect(again.duplicate).toBe(true);
    // A redelivery the stream cannot catch (no header): the orchestrator must know it applied it.
    await js.publish(subjects.inbox(taskId), payload);
    const second: GateDecide = { ...approval, msgId: `${taskId}:decision:twice`, sentAt: new Date().toISOString() };
    await js.publish(subjects.inbox(taskId), JSON.stringify(second), { msgID: second.msgId });

    const done = await settled(taskId, 'to be done', ['done', 'failed']);
    expect(done.state).toBe('done');
    expect(done.context.gateVisits.plan).toBe(1);
    expect(done.context.decisions.filter((d) => d.gate === 'plan')).toEqual([
      expect.objectContaining({ by: 'tester', decision: 'approve', counted: true }),
    ]);
    expect(done.context.stages.map((s) => `${s.stage}#${s.attempt}`)).toEqual(['plan#1', 'implement#1', 'review#1', 'deploy#1']);
    expect(requestsOf('coder', taskId)).toHaveLength(1);

    const decisions = (await readLog(taskId)).flatMap((e) =>
      e.type === 'task.event' && e.event.type === 'gate.decide' ? [{ msgId: e.event.msgId, accepted: e.accepted, note: e.note }] : [],
    );
    expect(decisions).toEqual([
      { msgId: approval.msgId, accepted: true, note: undefined },
      { msgId: second.msgId, accepted: false, note: expect.stringMatching(/not waiting at a gate$/) },
    ]);
    expect(model.remaining()).toBe(0);
  });

  it('fails the task when its job was delivered as often as allowed and no worker finished it', async () => {
    expect(config.jobs.maxDeliveries).toBe(2);
    const coderRequestsBefore = model.requests.filter((r) => r.role === 'coder').length;
    await workers.get('coder')?.stop();
    workers.delete('coder');
    await ensureTopology(nc, { jobAckWaitMs: 1_000, jobMaxDeliveries: 2, updateExisting: true });
    try {
      model.enqueue('planner', { json: plan });
      const taskId = await submitTask(await sampleRepo());

      // Two workers take the job and die before finishing it: pulled, never acked, gone.
      for (const delivery of [1, 2]) {
        const dying = await connectBus(server.url, `dying-coder-${delivery}`);
        const consumer = await jetstream(dying).consumers.get(STREAMS.jobs, workerConsumer('coder'));
        const msg = await consumer.next({ expires: 10_000 });
        if (msg === null) throw new Error(`delivery ${delivery} of the coder job did not arrive within 10 s`);
        expect(Job.parse(msg.json()).taskId).toBe(taskId);
        expect(msg.info.deliveryCount).toBe(delivery);
        await dying.close();
      }

      await startWorker('coder', { ackWaitMs: 1_000 });
      const failed = await settled(taskId, 'to fail', ['failed', 'reviewing', 'done']);
      expect(failed.state).toBe('failed');
      expect(failed.context.error).toEqual({
        stage: 'implement',
        reason: 'the coder job was delivered 2 times and no worker finished it (workers stopped or crashed mid-job)',
      });
      expect(model.requests.filter((r) => r.role === 'coder')).toHaveLength(coderRequestsBefore);
      expect(model.remaining()).toBe(0);
    } finally {
      await workers.get('coder')?.stop();
      await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 2, updateExisting: true });
      await startWorker('coder');
    }
  });
});

describe('a NATS restart while a task runs, across the real processes', () => {
  let procs: StagegateProcesses;

  beforeAll(async () => {
    procs = await startStagegateProcesses({ natsUrl: server.url, modelUrl: model.url });
    await procs.all();
  });

  afterAll(async () => {
    await procs?.stop();
  });

  it('finishes the task without asking any agent twice', async () => {
    const scripted = { planner: 1, coder: 1, reviewer: 2 };
    const already = model.requests.length;
    model.enqueue('planner', { json: plan });
    model.enqueue('coder', { ...codeAnswer, delayMs: 3_000 });
    model.enqueue('reviewer', { json: approve }, { json: noFindings });
    const taskId = await submitTask(await sampleRepo());

    const coderAsked = await waitFor('the coder to ask the model', async () => requestsOf('coder', taskId)[0]);
    await server.restart();
    // The restart must have happened while the coder waited for its answer.
    expect(Date.now()).toBeLessThan(Date.parse(coderAsked.receivedAt) + 3_000);

    const done = await settled(taskId, 'to be done after the restart', ['done', 'failed', 'cancelled'], 40_000);
    expect(done.state, `${done.context.error?.reason ?? ''}\n${await procs.logs()}`).toBe('done');
    const asked = model.requests.slice(already);
    for (const [role, count] of Object.entries(scripted)) {
      expect(asked.filter((r) => r.role === role), role).toHaveLength(count);
    }
    expect(model.remaining()).toBe(0);
  });
});
