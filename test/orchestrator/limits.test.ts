/**
 * The abuse and cost limits at the task client, the path the CLI, the HTTP API and GitHub all
 * take to start work: over a real nats-server, an orchestrator pricing results and canned
 * agents whose results name `test-model`, priced so that one result (100 input tokens) costs
 * $1.00. Each test works on repositories (and owners) of its own; clients with different
 * limits share one NATS, as several serve and CLI processes would. Time is the test's clock.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import type { RunningWorker } from '../../core/bus/job-worker.js';
import type { InboxMessage, TaskSpec } from '../../core/bus/messages.js';
import { ORCHESTRATOR_CONSUMER, STREAMS, subjects } from '../../core/bus/subjects.js';
import { ensureTopology, openUsageBucket } from '../../core/bus/topology.js';
import { LimitsConfig } from '../../core/config.js';
import type { GatePolicies } from '../../core/policy.js';
import { accountOf, keyToken } from '../../orchestrator/limits/account.js';
import { LimitReached } from '../../orchestrator/limits/limit-reached.js';
import { SpendEntry, spentOn, utcDay } from '../../orchestrator/limits/spend-ledger.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { cannedHandlers, oneCall, samplePlan, startCannedAgents } from '../helpers/canned-agents.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait-for.js';

const HOUR = 3_600_000;
const BASE = Date.parse('2030-05-01T22:10:00.000Z');
const started = Date.now();
let offsetMs = 0;
const now = () => new Date(BASE + (Date.now() - started) + offsetMs);

const manual = { approvers: ['alice'], required: 1, autoApprove: false };
const policies: GatePolicies = { plan: manual, review: manual, deploy: manual };

let server: TestNatsServer;
let nc: NatsConnection;
let orchestrator: RunningOrchestrator;
let agents: RunningWorker[];
let plain: TaskClient;
let usage: KV;

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  orchestrator = await startOrchestrator({
    nc,
    log: pino({ level: 'silent' }),
    pricing: { 'test-model': { inputPerMTok: 10_000, cachedInputPerMTok: 0, outputPerMTok: 0 } },
  });
  agents = await startCannedAgents(
    nc,
    {
      // A plan asked for again after a rejection fails when the title says so: a task that fails while running.
      planner: async (job, ctx) => {
        if (job.type === 'plan.request' && job.task.title.includes('[fails]') && (job.attempt > 1 || job.task.title.includes('at once'))) throw new Error('the model timed out');
        return cannedHandlers.planner(job, ctx);
      },
    },
    { now, model: 'test-model' },
  );
  plain = await createTaskClient(nc, { now });
  usage = await openUsageBucket(nc);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await orchestrator.stop();
  await nc.drain();
  await server.cleanup();
});

const clientWith = (limits: Record<string, unknown>) => createTaskClient(nc, { now, limits: LimitsConfig.parse(limits) });
const specFor = (repo: string, submittedBy = 'alice', title = 'Add a greeting'): TaskSpec => ({ repo, title, body: '', base: 'main', submittedBy });

const stateOf = (taskId: string, state: string) =>
  waitFor(`task ${taskId} to be ${state}`, async () => {
    const record = await plain.get(taskId).catch(() => undefined);
    return record?.state === state ? record : undefined;
  });

async function refusalOf(start: Promise<unknown>): Promise<LimitReached> {
  const err = await start.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof LimitReached)) throw new Error(`expected LimitReached, got ${String(err)}`);
  return err;
}

async function taskCount(repo: string): Promise<number> {
  return new Set((await plain.list()).filter((r) => r.context.spec.repo === repo).map((r) => r.context.taskId)).size;
}

const nextHour = () => new Date((Math.floor(now().getTime() / HOUR) + 1) * HOUR).toISOString();

/** Every inbox message so far has been handled (acked) by the orchestrator. */
const inboxDrained = async () => {
  const jsm = await jetstreamManager(nc);
  await waitFor('the orchestrator to handle every inbox message', async () => {
    const info = await jsm.consumers.info(STREAMS.inbox, ORCHESTRATOR_CONSUMER);
    return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
  });
};

describe('whose limits a task counts against', () => {
  it.each([
    ['https://github.com/Acme/App.git', 'acme/app', 'acme'],
    ['git@github.com:acme/app.git', 'acme/app', 'acme'],
    ['ssh://git@git.example.com:2222/group/sub/tool', 'sub/tool', 'sub'],
    ['http://127.0.0.1:9/git/t-1/acme/app.git', 'acme/app', 'acme'],
    ['https://git.example.com/solo', 'https://git.example.com/solo', undefined],
    ['/home/dev/Project', '/home/dev/Project', undefined],
  ])('counts %s as repository %s of owner %s', (repo, expected, org) => {
    expect(accountOf(specFor(repo))).toEqual({ repo: expected, org });
  });

  it('takes a GitHub task\'s repository and owner from its source, lower-cased', () => {
    const spec = { ...specFor('http://127.0.0.1:9/git/t-1/x/y.git'), source: { kind: 'github' as const, owner: 'Acme', repo: 'App', issueNumber: 3 } };
    expect(accountOf(spec)).toEqual({ repo: 'acme/app', org: 'acme' });
  });

  it('turns any name into a key token that keeps names apart', () => {
    expect(keyToken('github:octo.cat')).toBe('github=3Aocto=2Ecat');
    expect(keyToken('a/b')).not.toBe(keyToken('a.b'));
    expect(keyToken('ü')).toBe('=C3=BC');
  });
});

describe('trigger rate limits', () => {
  it("refuses a person's start over the limit with the limit, count and reset in the error, and sends nothing", async () => {
    const client = await clientWith({ triggersPerUser: 2 });
    await client.submit({ spec: specFor('/repos/rate-a', 'dora'), policies, maxReviewRounds: 1 });
    await client.submit({ spec: specFor('/repos/rate-b', 'dora'), policies, maxReviewRounds: 1 });

    const refused = await refusalOf(client.submit({ spec: specFor('/repos/rate-c', 'dora'), policies, maxReviewRounds: 1, taskId: 't-rate-c' }));
    expect(refused.message).toBe(`limit reached: dora may start 2 tasks per hour (limits.triggersPerUser) and has started 2; it resets at ${nextHour()}`);
    expect(refused.refusal).toMatchObject({ limit: 'triggersPerUser', subject: 'dora', value: 2, current: 2 });
    expect(refused.code).toBe('LIMIT_REACHED');
    await inboxDrained();
    expect(await taskCount('/repos/rate-c')).toBe(0);
    await expect(plain.get('t-rate-c')).rejects.toThrow('unknown task t-rate-c');
  });

  it('counts the starts of every client together, and starts again once the window has passed', async () => {
    const one = await clientWith({ triggersPerRepo: 1, windowMs: HOUR });
    const other = await clientWith({ triggersPerRepo: 1, windowMs: HOUR });
    await one.submit({ spec: specFor('/repos/shared', 'ed'), policies, maxReviewRounds: 1 });
    const refused = await refusalOf(other.submit({ spec: specFor('/repos/shared', 'flo'), policies, maxReviewRounds: 1 }));
    expect(refused.message).toBe(`limit reached: /repos/shared may have 1 task start per hour (limits.triggersPerRepo) and has had 1; it resets at ${nextHour()}`);

    offsetMs += HOUR;
    await other.submit({ spec: specFor('/repos/shared', 'flo'), policies, maxReviewRounds: 1 });
    await inboxDrained();
    expect(await taskCount('/repos/shared')).toBe(2);
  });

  it('takes nothing from the other limits for a start one limit refused', async () => {
    const client = await clientWith({ triggersPerUser: 3, triggersPerRepo: 1 });
    await client.submit({ spec: specFor('/repos/give-a', 'gus'), policies, maxReviewRounds: 1 });
    for (let i = 0; i < 3; i++) {
      expect((await refusalOf(client.submit({ spec: specFor('/repos/give-a', 'gus'), policies, maxReviewRounds: 1 }))).refusal.limit).toBe('triggersPerRepo');
    }
    // gus has started one task, not four: two more fit under his limit of three.
    await client.submit({ spec: specFor('/repos/give-b', 'gus'), policies, maxReviewRounds: 1 });
    await client.submit({ spec: specFor('/repos/give-c', 'gus'), policies, maxReviewRounds: 1 });
    expect((await refusalOf(client.submit({ spec: specFor('/repos/give-d', 'gus'), policies, maxReviewRounds: 1 }))).refusal.limit).toBe('triggersPerUser');
  });
});

describe('running tasks per repository', () => {
  const end = {
    cancelled: async (client: TaskClient, taskId: string) => client.cancel(taskId, 'alice', 'not needed'),
    failed: async (client: TaskClient, taskId: string) => void (await client.decide({ taskId, decision: 'reject', by: 'alice', via: 'cli', comment: 'again' })),
    done: async (client: TaskClient, taskId: string) => {
      for (const state of ['awaitingPlanApproval', 'awaitingDeployApproval']) {
        await stateOf(taskId, state);
        await client.decide({ taskId, decision: 'approve', by: 'alice', via: 'cli' });
      }
    },
  };

  it.each(['cancelled', 'failed', 'done'] as const)('refuses a third task while two run, and accepts it once one has %s', async (how) => {
    const repo = `https://git.example.com/conc-${how}/app.git`;
    const client = await clientWith({ concurrentTasksPerRepo: 2 });
    const first = await client.submit({ spec: specFor(repo, 'hal', 'Add a cache [fails]'), policies, maxReviewRounds: 1 });
    const second = await client.submit({ spec: specFor(repo), policies, maxReviewRounds: 1 });
    await stateOf(first, 'awaitingPlanApproval');
    await stateOf(second, 'awaitingPlanApproval');

    const refused = await refusalOf(client.submit({ spec: specFor(repo), policies, maxReviewRounds: 1, taskId: `t-third-${how}` }));
    expect(refused.message).toBe(
      `limit reached: conc-${how}/app may have 2 tasks running at once (limits.concurrentTasksPerRepo) and has 2 (${first}, ${second}); it resets when one of them is done, failed or cancelled`,
    );
    await expect(plain.get(`t-third-${how}`)).rejects.toThrow('unknown task');

    await end[how](client, first);
    await stateOf(first, how);
    const third = await client.submit({ spec: specFor(repo), policies, maxReviewRounds: 1, taskId: `t-third-${how}` });
    await stateOf(third, 'awaitingPlanApproval');
  });

  it('takes a place again for a retried task, and refuses the retry while the repository is full', async () => {
    const repo = 'git@git.example.com:conc-retry/app.git';
    const client = await clientWith({ concurrentTasksPerRepo: 1 });
    const failing = await client.submit({ spec: specFor(repo, 'ivy', 'Fails at once [fails]'), policies, maxReviewRounds: 1 });
    await stateOf(failing, 'failed');
    const running = await client.submit({ spec: specFor(repo), policies, maxReviewRounds: 1 });

    const refused = await refusalOf(client.retry(failing, 'ivy'));
    expect(refused.refusal).toMatchObject({ limit: 'concurrentTasksPerRepo', subject: 'conc-retry/app', current: 1, running: [running] });
    await inboxDrained();
    expect((await plain.get(failing)).context.attempts.plan).toBe(1);

    await client.cancel(running, 'alice', 'make room');
    await stateOf(running, 'cancelled');
    await client.retry(failing, 'ivy');
    await waitFor('the retried plan', async () => ((await plain.get(failing)).context.attempts.plan === 2 ? true : undefined));
  });
});

describe('daily spend', () => {
  const spent = (org: string, repo: string, scope: 'repo' | 'org') => spentOn(usage, utcDay(now()), { repo: `${org}/${repo}`, org }, scope);
  const spendReaches = (org: string, repo: string, scope: 'repo' | 'org', usd: number) =>
    waitFor(`${org}/${repo} (${scope}) to have spent $${usd}`, async () => ((await spent(org, repo, scope)) >= usd ? true : undefined));
  const url = (org: string, repo: string) => `https://github.com/${org}/${repo}.git`;

  it("prices each result with the model it names, and counts a redelivered result once", async () => {
    const taskId = await plain.submit({ spec: specFor(url('spend-once', 'app')), policies, maxReviewRounds: 1 });
    const atGate = await stateOf(taskId, 'awaitingPlanApproval');
    await spendReaches('spend-once', 'app', 'repo', 1);
    const entries = [];
    for await (const e of await usage.history({ key: `spend.*.spend-once.>` })) entries.push(SpendEntry.parse(e.json()));
    expect(entries).toEqual([{ taskId, repo: 'spend-once/app', org: 'spend-once', day: utcDay(now()), model: 'test-model', usage: oneCall, usd: 1, priced: true }]);

    // The planner's result again, as a worker would publish it past the inbox's dedupe window.
    const result: InboxMessage = { type: 'plan.proposed', taskId, msgId: `${taskId}:plan:1:result`, sentAt: atGate.context.updatedAt, jobId: `${taskId}:plan:1`, usage: oneCall, model: 'test-model', plan: samplePlan };
    const js = jetstream(nc);
    await js.publish(subjects.inbox(taskId), JSON.stringify(result));
    await js.publish(subjects.inbox(taskId), JSON.stringify(result));
    await inboxDrained();
    expect(await spent('spend-once', 'app', 'repo')).toBe(1);
  });

  it('counts a result the task no longer waits for, once however often it comes', async () => {
    const taskId = await plain.submit({ spec: specFor(url('spend-stale', 'app')), policies, maxReviewRounds: 1 });
    await stateOf(taskId, 'awaitingPlanApproval');
    await spendReaches('spend-stale', 'app', 'repo', 1);
    const late: InboxMessage = { type: 'job.failed', taskId, msgId: 'late-planner:result', sentAt: now().toISOString(), jobId: `${taskId}:plan:7`, usage: oneCall, model: 'test-model', stage: 'plan', reason: 'a worker that lost its job' };
    const js = jetstream(nc);
    for (let i = 0; i < 3; i++) await js.publish(subjects.inbox(taskId), JSON.stringify(late));
    await inboxDrained();
    expect(await spent('spend-stale', 'app', 'repo')).toBe(2);
    expect((await plain.get(taskId)).state).toBe('awaitingPlanApproval');
  });

  it("refuses a start once a repository's or its owner's spend today reached the cap, and starts it the next UTC day", async () => {
    const client = await clientWith({ dailySpendUsdPerRepo: 2, dailySpendUsdPerOrg: 3 });
    for (const repo of ['a', 'a', 'b']) await stateOf(await client.submit({ spec: specFor(url('spend-cap', repo)), policies, maxReviewRounds: 1 }), 'awaitingPlanApproval');
    await spendReaches('spend-cap', 'b', 'org', 3);

    const resetsAt = `${utcDay(new Date(now().getTime() + 86_400_000))}T00:00:00.000Z`;
    const byRepo = await refusalOf(client.submit({ spec: specFor(url('spend-cap', 'a')), policies, maxReviewRounds: 1 }));
    expect(byRepo.message).toBe(`limit reached: spend-cap/a may spend $2.00 on models per UTC day (limits.dailySpendUsdPerRepo) and has spent $2.00 today; it resets at ${resetsAt}`);
    const byOrg = await refusalOf(client.submit({ spec: specFor(url('Spend-Cap', 'c')), policies, maxReviewRounds: 1 }));
    expect(byOrg.message).toBe(`limit reached: the repositories of spend-cap may spend $3.00 on models per UTC day (limits.dailySpendUsdPerOrg) and have spent $3.00 today; it resets at ${resetsAt}`);
    // A repository of another owner is not held to spend-cap's spend.
    await client.submit({ spec: specFor(url('other-owner', 'c')), policies, maxReviewRounds: 1 });

    offsetMs += Date.parse(resetsAt) - now().getTime();
    const taskId = await client.submit({ spec: specFor(url('spend-cap', 'c')), policies, maxReviewRounds: 1 });
    await stateOf(taskId, 'awaitingPlanApproval');
  });
});
