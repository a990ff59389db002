import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { runCommand } from '../../core/exec/run-command.js';
import type { GatePolicies } from '../../core/policy.js';
import { startScriptedModelServer, type ScriptedModelServer } from '../../core/scripted-model/index.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { DEMO_CODER_TURNS, DEMO_SCRIPT } from '../../cli/demo/demo-script.js';
import { SAMPLE_TASK, createSampleRepo } from '../../cli/demo/sample-repo.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { startStagegateProcesses, type StagegateProcesses } from '../helpers/stagegate-processes.js';
import { waitFor } from '../helpers/wait-for.js';

const manual = { approvers: ['tester'], required: 1, autoApprove: false };
const policies: GatePolicies = { plan: manual, review: manual, deploy: manual };

let server: TestNatsServer;
let model: ScriptedModelServer;
let procs: StagegateProcesses;
let nc: NatsConnection;
let client: TaskClient;

beforeAll(async () => {
  server = await startTestNatsServer();
  model = await startScriptedModelServer({ script: { answers: {} } });
  procs = await startStagegateProcesses({ natsUrl: server.url, modelUrl: model.url });
  await procs.all();
  nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: false });
  client = await createTaskClient(nc);
});

afterAll(async () => {
  await procs?.stop();
  await nc?.drain();
  await model?.close();
  await server?.cleanup();
});

const inState = (taskId: string, ...states: string[]) => async () => {
  const record = await client.get(taskId);
  return states.includes(record.state) ? record : undefined;
};

describe('the pipeline across real worker processes', () => {
  it('takes a task from submission to a deployed, tested change, with humans at both gates', async () => {
    for (const role of ['planner', 'coder', 'reviewer'] as const) model.enqueue(role, ...(DEMO_SCRIPT.answers[role] ?? []));
    const repo = await createSampleRepo(join(await mkdtemp(join(tmpdir(), 'sg-repo-')), 'textkit'));
    const taskId = await client.submit({
      spec: { repo, title: SAMPLE_TASK.title, body: SAMPLE_TASK.body, base: 'main', submittedBy: 'tester' },
      policies,
      maxReviewRounds: 2,
    });

    const atPlanGate = await waitFor('the plan gate', inState(taskId, 'awaitingPlanApproval', 'failed'));
    expect(atPlanGate.state).toBe('awaitingPlanApproval');
    expect(atPlanGate.context.plan?.filesToTouch).toEqual(['src/textkit.js']);
    await client.decide({ taskId, decision: 'approve', by: 'tester', via: 'cli' });

    const atDeployGate = await waitFor('the deploy gate', inState(taskId, 'awaitingDeployApproval', 'failed'), 60_000);
    expect(atDeployGate.state).toBe('awaitingDeployApproval');
    expect(atDeployGate.context.reviewRound).toBe(2);
    expect(atDeployGate.context.verdict?.decision).toBe('approve');
    expect(await readFile(join(repo, 'src/textkit.js'), 'utf8')).not.toContain('slugify');

    await client.decide({ taskId, decision: 'approve', by: 'tester', via: 'cli', comment: 'ship it' });
    const done = await waitFor('done', inState(taskId, 'done', 'failed'), 60_000);
    expect(done.state).toBe('done');
    expect(done.context.stages.map((s) => `${s.stage}#${s.attempt}:${s.outcome}`)).toEqual([
      'plan#1:plan proposed',
      'implement#1:committed',
      'review#1:changes requested',
      'implement#2:committed',
      'review#2:approved',
      'deploy#1:deployed',
    ]);
    const coderTurns = DEMO_CODER_TURNS.firstRound + DEMO_CODER_TURNS.secondRound;
    expect(done.context.usage.calls).toBe(5 + coderTurns);

    // The change is on main, in the repository's own working tree, and its tests pass there.
    expect(await readFile(join(repo, 'src/textkit.js'), 'utf8')).toContain("normalize('NFKD')");
    expect((await runCommand('npm test', { cwd: repo, timeoutMs: 60_000 })).exitCode).toBe(0);

    // Every model call was stateless and said who asked; the coder's were streamed turns.
    const coderRound = (n: number) => Array<string>(n).fill('coder');
    // A review is two calls: the verdict, then the security review.
    expect(model.requests.map((r) => r.role)).toEqual([
      'planner',
      ...coderRound(DEMO_CODER_TURNS.firstRound),
      'reviewer',
      'reviewer',
      ...coderRound(DEMO_CODER_TURNS.secondRound),
      'reviewer',
      'reviewer',
    ]);
    for (const request of model.requests) {
      expect(request.body.store).toBe(false);
      expect(request.body).not.toHaveProperty('previous_response_id');
      expect(request.body.prompt_cache_key).toBe(`stagegate:${taskId}:${request.role}`);
      expect(request.taskId).toBe(taskId);
    }
    const coder = model.requests.filter((r) => r.role === 'coder');
    for (const request of coder) expect(request.body).toMatchObject({ stream: true, include: ['reasoning.encrypted_content'] });
    // Within a job, each coder request starts with the one before (the prefix a cache serves).
    for (const round of [coder.slice(0, DEMO_CODER_TURNS.firstRound), coder.slice(DEMO_CODER_TURNS.firstRound)]) {
      for (let i = 1; i < round.length; i++) {
        const before = round[i - 1]?.body.input as unknown[];
        expect((round[i]?.body.input as unknown[]).slice(0, before.length)).toEqual(before);
      }
    }
    // The second coder round saw the reviewer's comment.
    expect(JSON.stringify(coder[DEMO_CODER_TURNS.firstRound]?.body.input)).toContain('Fold accents');
    // Each coder turn is on the task's log, with its usage.
    const turns: string[] = [];
    for await (const entry of client.logs(taskId)) {
      if (entry.type === 'agent.progress' && entry.role === 'coder' && entry.message.startsWith('turn ')) turns.push(entry.message);
    }
    expect(turns).toHaveLength(coderTurns);
    expect(turns).toContain('turn 2: shell npm test → exit 1');
  });
});
