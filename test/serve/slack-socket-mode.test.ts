import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import type { RunningWorker } from '../../core/bus/job-worker.js';
import type { TaskSpec } from '../../core/bus/messages.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { loadConfig } from '../../core/config.js';
import type { GatePolicies } from '../../core/policy.js';
import type { GateButtonValue } from '../../orchestrator/channels/slack/payloads.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { startServe, type RunningServe } from '../../orchestrator/serve/serve.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startFakeSlackApi, type FakeSlackApi } from '../fakes/slack-api.js';
import { startCannedAgents } from '../helpers/canned-agents.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { buttonClick, buttonValueOf, closedUpdate, gateMessageFor, textOf } from '../helpers/slack-payloads.js';
import { waitFor } from '../helpers/wait-for.js';

const BOT_TOKEN = 'xoxb-test-bot-token';
const APP_TOKEN = 'xapp-test-app-token';
const silent = pino({ level: 'silent' });
const spec: TaskSpec = { repo: '/tmp/repo', title: 'Add a greeting', body: '', base: 'main', submittedBy: 'alice' };
const gate = { approvers: ['slack:U0ALICE'], required: 1, autoApprove: false };
const policies: GatePolicies = { plan: gate, review: gate, deploy: gate };

let server: TestNatsServer;
let nc: NatsConnection;
let client: TaskClient;
let orchestrator: RunningOrchestrator;
let agents: RunningWorker[];
let slack: FakeSlackApi;
let serve: RunningServe;

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  orchestrator = await startOrchestrator({ nc, log: silent });
  agents = await startCannedAgents(nc);
  client = await createTaskClient(nc);
  slack = await startFakeSlackApi({
    botToken: BOT_TOKEN,
    appToken: APP_TOKEN,
    expect: ['apps.connections.open', 'chat.postMessage', 'chat.update', 'chat.postEphemeral'],
  });
  const config = loadConfig({ env: { NATS_URL: server.url, SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_APP_TOKEN: APP_TOKEN, SLACK_API_URL: slack.url, SLACK_CHANNEL: 'C0GATES' } });
  serve = await startServe({ config, nc, log: silent, port: 0 });
});

afterEach(() => {
  expect(slack.unexpected).toEqual([]);
});

afterAll(async () => {
  await serve.stop();
  await Promise.all(agents.map((a) => a.stop()));
  await orchestrator.stop();
  await nc.drain();
  await slack.close();
  await server.cleanup();
});

describe('Slack channel (Socket Mode)', () => {
  it('connects with the app token and mounts no HTTP endpoint', async () => {
    await slack.socket.connected();
    expect(slack.callsOf('apps.connections.open')).toEqual([expect.objectContaining({ token: APP_TOKEN })]);
    expect(serve.channels).toContain('slack (Socket Mode, channel C0GATES)');
    expect((await fetch(`${serve.url}/slack/events`, { method: 'POST' })).status).toBe(404);
  });

  it('approves on a click delivered over the socket, acking it, and closes the gate message', async () => {
    await slack.socket.connected();
    const taskId = await client.submit({ spec, policies, maxReviewRounds: 2 });
    const posted = await slack.waitForCall('chat.postMessage', gateMessageFor(taskId));
    const ts = String(posted.reply.ts);
    const ack = await slack.socket.deliver('interactive', buttonClick('approve', buttonValueOf(posted) as GateButtonValue, 'U0ALICE', ts));
    expect(ack).toMatchObject({ envelope_id: expect.stringMatching(/^envelope-/) });
    await waitFor('the task past the plan gate', async () => {
      const r = await client.get(taskId);
      return r.state !== 'awaitingPlanApproval' ? r : undefined;
    });
    const update = await slack.waitForCall('chat.update', closedUpdate(ts));
    expect(textOf(update)).toContain(':white_check_mark: Approved by <@U0ALICE> via slack');
  });
});
