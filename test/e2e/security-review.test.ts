/**
 * The security review across the real processes: the reviewer's checks find a workflow that
 * grants write permission, the coder gets one round with the finding, the finding remains, and
 * the deploy gate holds — whatever its auto-approval says — until the security group overrides
 * it with a reason; then the change ships.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { git } from '../../core/git/git.js';
import type { GatePolicies } from '../../core/policy.js';
import { startScriptedModelServer, type AnswerFn, type ScriptedModelServer } from '../../core/scripted-model/index.js';
import type { TaskRecord } from '../../core/task-record.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { createSmallRepo, isSecurityReview, noFindings, smallRepoAnswers } from '../helpers/small-repo.js';
import { startStagegateProcesses, type StagegateProcesses } from '../helpers/stagegate-processes.js';
import { waitFor } from '../helpers/wait-for.js';

const auto = { approvers: ['tester'], required: 1, autoApprove: true };
const policies: GatePolicies = { plan: auto, review: auto, deploy: auto, security: { approvers: ['sec-lead'], required: 1, protectedPaths: [] } };

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

function call(id: string, name: string, args: Record<string, unknown>) {
  return { type: 'function_call', id: `fc_${id}`, call_id: `call_${id}`, name, arguments: JSON.stringify(args) };
}

/** The first round adds a note and a workflow that may write to the repository. */
const firstRound: AnswerFn = (request) => ({
  output: [
    call('1', 'apply_patch', {
      patch: `*** Begin Patch\n*** Add File: notes/${request.taskId}.md\n+done\n*** Add File: .github/workflows/notes.yml\n+on: push\n+permissions:\n+  contents: write\n*** End Patch`,
    }),
    call('2', 'finish', { summary: 'note and workflow added' }),
  ],
});
/** The round on the finding changes the note and leaves the workflow as it is. */
const secondRound: AnswerFn = (request) => ({
  output: [
    call('3', 'apply_patch', { patch: `*** Begin Patch\n*** Update File: notes/${request.taskId}.md\n@@\n-done\n+done and checked\n*** End Patch` }),
    call('4', 'finish', { summary: 'note checked; the workflow needs its permission' }),
  ],
});
/** Both reviews approve; the model's security review finds nothing, so what holds the task is the checks'. */
const reviewer: AnswerFn = (request) => ({ json: isSecurityReview(request) ? noFindings : { decision: 'approve', summary: 'fine', comments: [], risk: 'low' } });

const inState = (taskId: string, ...states: string[]) => async (): Promise<TaskRecord | undefined> => {
  const record = await client.get(taskId);
  return states.includes(record.state) ? record : undefined;
};

describe('the security review, across real worker processes', () => {
  it('sends a high finding back to the coder once, then holds the deploy gate until the security group overrides it with a reason', async () => {
    model.enqueue('planner', smallRepoAnswers.planner);
    model.enqueue('coder', firstRound, secondRound);
    model.enqueue('reviewer', reviewer, reviewer, reviewer, reviewer);
    const repo = await createSmallRepo();
    const taskId = await client.submit({ spec: { repo, title: 'Add a note', body: '', base: 'main', submittedBy: 'tester' }, policies, maxReviewRounds: 2 });

    const held = await waitFor('the deploy gate', inState(taskId, 'awaitingDeployApproval', 'deploying', 'done', 'failed'), 90_000);
    expect(held.state, held.context.error?.reason).toBe('awaitingDeployApproval');
    expect(held.context.stages.map((s) => `${s.stage}#${s.attempt}:${s.outcome}`)).toEqual([
      'plan#1:plan proposed',
      'implement#1:committed',
      'review#1:security findings',
      'implement#2:committed',
      'review#2:approved',
    ]);
    expect(held.context.security.findings).toEqual([
      expect.objectContaining({ severity: 'medium', category: 'ci-workflow', file: '.github/workflows/notes.yml', source: 'check' }),
      expect.objectContaining({ severity: 'high', category: 'permissions', file: '.github/workflows/notes.yml', line: 2, source: 'check' }),
    ]);
    // The deploy policy auto-approves, but not this gate; and the coder's round saw the finding.
    expect(held.context.decisions.filter((d) => d.gate === 'deploy')).toEqual([]);
    const coder = model.requests.filter((r) => r.role === 'coder' && r.taskId === taskId);
    expect(JSON.stringify(coder[1]?.body.input)).toContain('Security (high, permissions)');
    expect(model.requests.filter((r) => r.role === 'reviewer' && r.taskId === taskId)).toHaveLength(4);

    const byDeployApprover = await client.decide({ taskId, decision: 'approve', by: 'tester', via: 'cli', comment: 'ship it' });
    expect(byDeployApprover).toMatchObject({ status: 'applied', counted: false, state: 'awaitingDeployApproval', note: 'high-severity security findings: only sec-lead can override, with a reason' });
    const withoutReason = await client.decide({ taskId, decision: 'approve', by: 'sec-lead', via: 'cli' });
    expect(withoutReason).toMatchObject({ counted: false, note: "high-severity security findings: an override needs a reason (the decision's comment)" });
    expect(await git(['ls-tree', '-r', '--name-only', 'main'], { cwd: repo })).toBe('README.md\n');

    const reason = 'the notes workflow publishes the notes; write access is what it is for';
    expect(await client.decide({ taskId, decision: 'approve', by: 'sec-lead', via: 'cli', comment: reason })).toMatchObject({ counted: true });
    const done = await waitFor('done', inState(taskId, 'done', 'failed'), 60_000);
    expect(done.state, done.context.error?.reason).toBe('done');
    expect(done.context.decisions.filter((d) => d.gate === 'deploy' && d.counted)).toEqual([
      expect.objectContaining({ by: 'sec-lead', comment: reason, securityOverride: true }),
    ]);
    expect(await git(['ls-tree', '-r', '--name-only', 'main'], { cwd: repo })).toBe(`.github/workflows/notes.yml\nREADME.md\nnotes/${taskId}.md\n`);

    const overrides = [];
    for await (const entry of client.logs(taskId)) if (entry.type === 'task.event' && entry.securityOverride !== undefined) overrides.push(entry.securityOverride);
    expect(overrides).toEqual([{ by: 'sec-lead', reason, findings: [expect.objectContaining({ category: 'permissions', severity: 'high' })] }]);
    expect(model.remaining()).toBe(0);
  });
});
