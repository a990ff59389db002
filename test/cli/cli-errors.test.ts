/**
 * The `stagegate` command as a user meets it: the real CLI in a child process, with a
 * controlled environment, against a nats-server of this file's own. Each failure must exit
 * with the status from cli/exit-codes.ts and say on stderr exactly what was wrong.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { ensureTopology, openTaskBucket } from '../../core/bus/topology.js';
import type { GatePolicies } from '../../core/policy.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { loadTask } from '../../orchestrator/task-store.js';
import { runStagegate } from '../helpers/cli.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait-for.js';

const manual = { approvers: ['tester'], required: 1, autoApprove: false };
const policies: GatePolicies = { plan: manual, review: manual, deploy: manual };

let server: TestNatsServer;
let nc: NatsConnection;
let client: TaskClient;
let orchestrator: RunningOrchestrator;
let tmp: string;

const runCli = (args: string[], extraEnv: Record<string, string> = {}) => runStagegate(args, { natsUrl: server.url, cwd: tmp }, extraEnv);

/** A port nothing listens on: bound once by us, then released. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port was assigned');
  return address.port;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sg-cli-'));
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'cli-test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  // An orchestrator but no workers: submitted tasks exist and stay in `planning`.
  orchestrator = await startOrchestrator({ nc, log: pino({ level: 'silent' }) });
  client = await createTaskClient(nc);
});

afterAll(async () => {
  await orchestrator?.stop();
  await nc?.drain();
  await server?.cleanup();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

const inPlanning = (taskId: string) => async () => {
  const record = await client.get(taskId);
  return record.state === 'planning' ? record : undefined;
};

describe('stagegate with an invalid configuration', () => {
  it('exits 2 naming the environment variable whose value is wrong', async () => {
    const result = await runCli(['status'], { STAGEGATE_MAX_REVIEW_ROUNDS: 'abc' });
    expect(result.stderr).toMatch(/^stagegate: invalid configuration: STAGEGATE_MAX_REVIEW_ROUNDS /);
    expect(result.code).toBe(2);
  });

  it('exits 2 naming the config file and the field that is wrong', async () => {
    const file = join(tmp, 'bad-config.json');
    await writeFile(file, JSON.stringify({ maxReviewRounds: -1 }));
    const result = await runCli(['--config', file, 'status']);
    expect(result.stderr).toContain(`${file}: 'maxReviewRounds' expected 0 or more`);
    expect(result.code).toBe(2);
  });
});

describe('stagegate when NATS cannot be reached', () => {
  // A CLI that kept waiting would be killed by runCli's timeout, and its code would be null.
  it('exits 1 rather than waiting for NATS, naming the URL it tried', async () => {
    const url = `nats://127.0.0.1:${await closedPort()}`;
    const result = await runCli(['status'], { NATS_URL: url });
    expect(result.stderr).toContain(`cannot reach NATS at ${url}`);
    expect(result.code).toBe(1);
  });
});

describe('stagegate acting on a task', () => {
  it('exits 2 with "unknown task" for status of a task that does not exist', async () => {
    const result = await runCli(['status', 't-nope']);
    expect(result.stderr.trim()).toBe('stagegate: unknown task t-nope');
    expect(result.code).toBe(2);
  });

  it('exits 2 with "unknown task" for approve of a task that does not exist', async () => {
    const result = await runCli(['approve', 't-nope']);
    expect(result.stderr.trim()).toBe('stagegate: unknown task t-nope');
    expect(result.code).toBe(2);
  });

  it('refuses to approve a task that is not waiting at a gate, and changes nothing', async () => {
    const taskId = await client.submit({
      spec: { repo: '/tmp/repo', title: 'sits in planning', body: '', base: 'main', submittedBy: 'tester' },
      policies,
      maxReviewRounds: 2,
    });
    await waitFor(`task ${taskId} to be created in planning`, inPlanning(taskId));
    const kv = await openTaskBucket(nc);
    const before = await loadTask(kv, taskId);

    const result = await runCli(['approve', taskId]);
    expect(result.stderr).toContain(`task ${taskId} is planning, not waiting at a gate`);
    expect(result.code).toBe(2);

    const after = await loadTask(kv, taskId);
    expect(after?.revision).toBe(before?.revision);
    expect(after?.record.state).toBe('planning');
    expect(after?.record.context.decisions).toEqual([]);
    const log = [];
    for await (const entry of client.logs(taskId)) log.push(entry);
    expect(log.filter((e) => e.type === 'task.event' && e.event.type === 'gate.decide')).toEqual([]);
  });

  it('exits 4 naming the limit when a submission is over it, and submits nothing', async () => {
    const limit = { STAGEGATE_LIMIT_CONCURRENT_TASKS_PER_REPO: '1' };
    const args = ['submit', '--repo', 'https://git.example.com/cli/app.git', '--title', 'one at a time', '--json'];
    const first = await runCli(args, limit);
    expect(first.code).toBe(0);
    const { taskId } = z.object({ taskId: z.string() }).parse(JSON.parse(first.stdout));

    const second = await runCli(args, limit);
    expect(second.stderr.trim()).toBe(
      `stagegate: limit reached: cli/app may have 1 task running at once (limits.concurrentTasksPerRepo) and has 1 (${taskId}); it resets when one of them is done, failed or cancelled`,
    );
    expect(second.code).toBe(4);
    expect(second.stdout).toBe('');
  });

  it('exits 2 from the argument parser when reject has no --reason', async () => {
    const result = await runCli(['reject', 't-whatever']);
    expect(result.stderr).toContain("required option '--reason <text>' not specified");
    expect(result.code).toBe(2);
  });
});

describe('stagegate output', () => {
  it('prints help and exits 0', async () => {
    const result = await runCli(['--help']);
    expect(result.stdout).toContain('Usage: stagegate');
    expect(result.code).toBe(0);
  });

  it('prints the help of submit and exits 0', async () => {
    const result = await runCli(['submit', '--help']);
    expect(result.stdout).toContain('Usage: stagegate submit');
    expect(result.stdout).toContain('--repo <path-or-url>');
    expect(result.code).toBe(0);
  });

  it('prints the new task id as JSON on submit --json, and the task is created', async () => {
    const result = await runCli(['submit', '--repo', 'x', '--title', 'y', '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const { taskId } = z.strictObject({ taskId: z.string().regex(/^t-[0-9a-f]{10}$/) }).parse(JSON.parse(result.stdout));
    const record = await waitFor(`task ${taskId} to be created`, inPlanning(taskId));
    expect(record.context.spec).toMatchObject({ repo: join(tmp, 'x'), title: 'y', submittedBy: 'tester' });
  });

  it('lists every task as JSON on status --json', async () => {
    const taskId = await client.submit({
      spec: { repo: '/tmp/repo', title: 'listed', body: '', base: 'main', submittedBy: 'tester' },
      policies,
      maxReviewRounds: 2,
    });
    await waitFor(`task ${taskId} to be created`, inPlanning(taskId));
    const result = await runCli(['status', '--json']);
    expect(result.code).toBe(0);
    const listed = z.array(z.object({ state: z.string(), context: z.object({ taskId: z.string() }) })).parse(JSON.parse(result.stdout));
    expect(listed.find((r) => r.context.taskId === taskId)?.state).toBe('planning');
    expect(listed.length).toBe((await client.list()).length);
  });
});
