/**
 * The coder's command gate across the real processes: the coder asks to run a command that
 * needs approval, publishes `command.approval_requested` with its work pushed, the task waits;
 * once a person approves, the resumed coder job runs the command and finishes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { git } from '../../core/git/git.js';
import type { GatePolicies } from '../../core/policy.js';
import { startScriptedModelServer, type ScriptedModelServer } from '../../core/scripted-model/index.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { createSmallRepo, smallRepoAnswers, smallRepoReviews } from '../helpers/small-repo.js';
import { startStagegateProcesses, type StagegateProcesses } from '../helpers/stagegate-processes.js';
import { waitFor } from '../helpers/wait-for.js';

const auto = { approvers: ['tester'], required: 1, autoApprove: true };
const manual = { approvers: ['tester'], required: 1, autoApprove: false };
const policies: GatePolicies = { plan: auto, review: auto, deploy: auto, command: manual };

let server: TestNatsServer;
let model: ScriptedModelServer;
let procs: StagegateProcesses;
let nc: NatsConnection;
let client: TaskClient;

beforeAll(async () => {
  server = await startTestNatsServer();
  model = await startScriptedModelServer({ script: { answers: {} } });
  procs = await startStagegateProcesses({ natsUrl: server.url, modelUrl: model.url, env: { STAGEGATE_REQUIRE_APPROVAL: 'touch' } });
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

function call(id: string, name: string, args: Record<string, unknown>) {
  return { type: 'function_call', id: `fc_${id}`, call_id: `call_${id}`, name, arguments: JSON.stringify(args) };
}

const touch = (id: string) => call(id, 'shell', { command: 'touch approved.txt', workdir: null, timeoutMs: null });

describe('the command gate, across real worker processes', () => {
  it('pauses the task when the coder asks for a command that needs approval, and resumes it with the command allowed', async () => {
    model.enqueue('planner', smallRepoAnswers.planner);
    model.enqueue(
      'coder',
      { output: [call('1', 'apply_patch', { patch: '*** Begin Patch\n*** Add File: notes.md\n+half done\n*** End Patch' }), touch('2')] },
      { output: [touch('3')] },
      { output: [call('4', 'finish', { summary: 'notes and the marker' })] },
    );
    model.enqueue('reviewer', ...smallRepoReviews());
    const repo = await createSmallRepo();
    const taskId = await client.submit({ spec: { repo, title: 'Add a note', body: '', base: 'main', submittedBy: 'tester' }, policies, maxReviewRounds: 1 });

    const waiting = await waitFor('the command gate', async () => {
      const record = await client.get(taskId);
      return ['awaitingCommandApproval', 'failed', 'done'].includes(record.state) ? record : undefined;
    });
    expect(waiting.state).toBe('awaitingCommandApproval');
    const pending = waiting.context.pendingCommand;
    expect(pending).toMatchObject({ command: 'touch approved.txt', pattern: 'touch' });
    // The work so far is on the branch, and the command has not run.
    expect(pending?.commit).toBe((await git(['rev-parse', `stagegate/${taskId}`], { cwd: repo })).trim());
    expect(await git(['ls-tree', '--name-only', `stagegate/${taskId}`], { cwd: repo })).toBe('README.md\nnotes.md\n');

    await client.decide({ taskId, decision: 'approve', by: 'tester', via: 'cli', gate: 'command' });
    const done = await waitFor('done', async () => {
      const record = await client.get(taskId);
      return ['done', 'failed'].includes(record.state) ? record : undefined;
    }, 60_000);
    expect(done.state, done.context.error?.reason).toBe('done');
    expect(await git(['ls-tree', '--name-only', 'main'], { cwd: repo })).toBe('README.md\napproved.txt\nnotes.md\n');

    const coder = model.requests.filter((r) => r.role === 'coder' && r.taskId === taskId);
    expect(coder).toHaveLength(3);
    const resumed = JSON.stringify(coder[1]?.body.input);
    expect(resumed).toContain('approved.txt');
    expect(resumed).toContain('# Commands a person approved for this task');
    expect(JSON.stringify(coder[2]?.body.input)).toContain('exit code 0');
    expect(model.remaining()).toBe(0);
  });
});
