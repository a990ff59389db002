/**
 * The `stagegate` command as a user meets it: the real CLI in a child process, with a
 * controlled environment, against a nats-server of this file's own. Each failure must exit
 * with the status from cli/exit-codes.ts and say on stderr exactly what was wrong.
 */
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '../../core/bus/connect.js';
import { openTaskBucket } from '../../core/bus/topology.js';
import type { GatePolicies } from '../../core/policy.js';
import type { TaskClient } from '../../orchestrator/task-client.js';
import { loadTask } from '../../orchestrator/task-store.js';
import { startCliHarness, type CliHarness } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait-for.js';

const manual = { approvers: ['tester'], required: 1, autoApprove: false };
const policies: GatePolicies = { plan: manual, review: manual, deploy: manual };

let h: CliHarness;
let nc: NatsConnection;
let client: TaskClient;
let tmp: string;

const runCli = (args: string[], extraEnv: Record<string, string> = {}) => h.run(args, extraEnv);

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
  h = await startCliHarness('cli');
  ({ nc, client, tmp } = h);
});

afterAll(async () => {
  await h?.stop();
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
