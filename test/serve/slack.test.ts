import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import type { JobHandler, RunningWorker } from '../../core/bus/job-worker.js';
import type { TaskSpec } from '../../core/bus/messages.js';
import { SLACK_CHANNEL_CONSUMER, STREAMS } from '../../core/bus/subjects.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { loadConfig, type Config } from '../../core/config.js';
import type { GatePolicies } from '../../core/policy.js';
import type { GateButtonValue } from '../../orchestrator/channels/slack/payloads.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { startServe, type RunningServe } from '../../orchestrator/serve/serve.js';
import { createSessionClient } from '../../orchestrator/sessions/session-client.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startFakeSlackApi, type FakeSlackApi } from '../fakes/slack-api.js';
import { cannedHandlers, oneCall, startCannedAgents } from '../helpers/canned-agents.js';
import { sqlInjection } from '../helpers/held-task.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import {
  actionsOf,
  blocksOf,
  buttonClick,
  buttonValueOf,
  closedUpdate,
  gateMessageFor,
  reasonSubmission,
  signedInteraction,
  textOf,
} from '../helpers/slack-payloads.js';
import { waitFor } from '../helpers/wait-for.js';

const BOT_TOKEN = 'xoxb-test-bot-token';
const SIGNING_SECRET = 'test-signing-secret-8f2a';
const silent = pino({ level: 'silent' });
const spec: TaskSpec = { repo: '/tmp/repo', title: 'Add a greeting', body: '', base: 'main', submittedBy: 'alice' };
/** Tasks with this title get a review whose high-severity finding survives the coder's round. */
const INSECURE = 'Search users by name';
const reviewer: JobHandler<'reviewer'> = async (job, ctx) =>
  job.task.title === INSECURE
    ? { type: 'review.approved', testsPassed: true, verdict: { decision: 'approve', summary: 'fine', comments: [] }, usage: oneCall, security: { summary: 'SQL injection', findings: [sqlInjection] } }
    : cannedHandlers.reviewer(job, ctx);
const slackGates: GatePolicies = {
  plan: { approvers: ['slack:U0ALICE', 'slack-group:S0LEADS'], required: 1, autoApprove: false },
  review: { approvers: ['slack:U0ALICE'], required: 1, autoApprove: false },
  deploy: { approvers: ['slack:U0ALICE'], required: 1, autoApprove: false },
};

let server: TestNatsServer;
let nc: NatsConnection;
let client: TaskClient;
let orchestrator: RunningOrchestrator;
let agents: RunningWorker[];
let slack: FakeSlackApi;
let config: Readonly<Config>;
let serve: RunningServe;

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  orchestrator = await startOrchestrator({ nc, log: silent });
  agents = await startCannedAgents(nc, { reviewer });
  client = await createTaskClient(nc);
  slack = await startFakeSlackApi({
    botToken: BOT_TOKEN,
    expect: ['chat.postMessage', 'chat.update', 'chat.postEphemeral', 'views.open', 'usergroups.list'],
    usergroups: { S0LEADS: ['U0BOB'], S0SEC: ['U0CAROL'] },
  });
  config = loadConfig({
    env: { NATS_URL: server.url, SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: slack.url, SLACK_CHANNEL: 'gates' },
  });
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

/** Posts an interactive payload to /slack/events, signed with the signing secret (or another one). */
async function sendToSlackEndpoint(payload: unknown, sign: { secret?: string; timestamp?: number } = {}) {
  const { body, headers } = signedInteraction(payload, sign.secret ?? SIGNING_SECRET, sign.timestamp);
  const res = await fetch(`${serve.url}/slack/events`, { method: 'POST', headers, body });
  return { status: res.status, text: await res.text() };
}

async function taskWithGateMessage(policies: GatePolicies = slackGates) {
  const taskId = await client.submit({ spec, policies, maxReviewRounds: 2 });
  const posted = await slack.waitForCall('chat.postMessage', gateMessageFor(taskId));
  return { taskId, posted, value: buttonValueOf(posted) as GateButtonValue, ts: String(posted.reply.ts) };
}

describe('Slack channel (HTTP mode)', () => {
  it('posts one gate message with the plan and Approve / Reject buttons for the gate visit', async () => {
    const { taskId, posted, value } = await taskWithGateMessage();
    expect(posted.args.channel).toBe('gates');
    expect(value).toEqual({ taskId, gate: 'plan', visit: 1 });
    expect(textOf(posted)).toContain('*Plan:* add the feature');
    expect(textOf(posted)).toContain('1. write it');
    expect(actionsOf(posted)?.elements).toEqual([
      expect.objectContaining({ action_id: 'stagegate_approve', style: 'primary' }),
      expect.objectContaining({ action_id: 'stagegate_reject', style: 'danger' }),
    ]);
    const context = blocksOf(posted).find((b) => b.type === 'context');
    expect(context?.elements?.[0]?.text).toContain('Approvers: <@U0ALICE>, <!subteam^S0LEADS>');
    expect(slack.callsOf('chat.postMessage', gateMessageFor(taskId))).toHaveLength(1);
  });

  it('approves on a signed Approve click and replaces the buttons with who approved, via Slack', async () => {
    const { taskId, value, ts } = await taskWithGateMessage();
    const res = await sendToSlackEndpoint(buttonClick('approve', value, 'U0ALICE', ts));
    expect(res.status).toBe(200);
    const record = await waitFor('the task past the plan gate', async () => {
      const r = await client.get(taskId);
      return r.state !== 'awaitingPlanApproval' ? r : undefined;
    });
    expect(record.context.decisions[0]).toMatchObject({ gate: 'plan', visit: 1, decision: 'approve', by: 'slack:U0ALICE', via: 'slack', counted: true });
    const update = await slack.waitForCall('chat.update', closedUpdate(ts));
    expect(update.args.channel).toBe('C0GATES');
    expect(textOf(update)).toContain(':white_check_mark: Approved by <@U0ALICE> via slack');
    expect(slack.callsOf('chat.postEphemeral', (c) => c.args.user === 'U0ALICE' && String(c.args.text).includes(taskId))).toEqual([]);
  });

  /** Slack calls since `from` about this task (tasks of earlier tests may still be moving, and posting). */
  const callsAbout = (taskId: string, ts: string, from: number) => slack.calls.slice(from).filter((c) => c.args.ts === ts || JSON.stringify(c.args).includes(taskId));

  it('refuses a click with a bad signature with 401, changing nothing', async () => {
    const { taskId, value, ts } = await taskWithGateMessage();
    const before = slack.calls.length;
    const res = await sendToSlackEndpoint(buttonClick('approve', value, 'U0ALICE', ts), { secret: 'not-the-secret' });
    expect(res.status).toBe(401);
    expect(callsAbout(taskId, ts, before)).toEqual([]);
    expect((await client.get(taskId)).context.decisions).toEqual([]);
  });

  it('refuses a correctly signed click older than five minutes', async () => {
    const { taskId, value, ts } = await taskWithGateMessage();
    const before = slack.calls.length;
    const res = await sendToSlackEndpoint(buttonClick('approve', value, 'U0ALICE', ts), { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
    expect(res.status).toBe(401);
    expect(callsAbout(taskId, ts, before)).toEqual([]);
    expect((await client.get(taskId)).state).toBe('awaitingPlanApproval');
  });

  it('answers a click from someone the policy does not allow with an ephemeral explanation, and the task stays', async () => {
    const { taskId, value, ts } = await taskWithGateMessage();
    const res = await sendToSlackEndpoint(buttonClick('approve', value, 'U0MALLORY', ts));
    expect(res.status).toBe(200);
    const told = await slack.waitForCall('chat.postEphemeral', (c) => c.args.user === 'U0MALLORY');
    expect(told.args).toMatchObject({ channel: 'C0GATES', text: 'slack:U0MALLORY is not an approver for the plan gate; nothing changed.' });
    const record = await client.get(taskId);
    expect(record.state).toBe('awaitingPlanApproval');
    expect(record.context.decisions).toEqual([expect.objectContaining({ by: 'slack:U0MALLORY', counted: false })]);
  });

  it('counts a member of an approving Slack user group, as the channel looked up', async () => {
    const { taskId, value, ts } = await taskWithGateMessage();
    await sendToSlackEndpoint(buttonClick('approve', value, 'U0BOB', ts));
    const record = await waitFor('the task past the plan gate', async () => {
      const r = await client.get(taskId);
      return r.state !== 'awaitingPlanApproval' ? r : undefined;
    });
    expect(record.context.decisions[0]).toMatchObject({ by: 'slack:U0BOB', counted: true, principal: { groups: ['S0LEADS'] } });
  });

  it('moves the task once on a double click; the second click is told who decided', async () => {
    const { taskId, value, ts } = await taskWithGateMessage();
    const click = buttonClick('approve', value, 'U0ALICE', ts);
    const responses = await Promise.all([sendToSlackEndpoint(click), sendToSlackEndpoint(click)]);
    expect(responses.map((r) => r.status)).toEqual([200, 200]);
    const told = await slack.waitForCall('chat.postEphemeral', (c) => c.args.user === 'U0ALICE' && String(c.args.text).includes(taskId));
    expect(told.args.text).toContain('plan gate was already decided by slack:U0ALICE via slack (approved); nothing changed');
    await slack.waitForCall('chat.update', closedUpdate(ts));
    const record = await client.get(taskId);
    expect(record.context.decisions.filter((d) => d.gate === 'plan' && d.counted)).toHaveLength(1);
    const applied: boolean[] = [];
    for await (const entry of client.logs(taskId)) if (entry.type === 'task.event' && entry.event.type === 'gate.decide') applied.push(entry.accepted);
    expect(applied.filter(Boolean)).toHaveLength(1);
  });

  it('opens a modal on Reject; submitting it rejects with the reason, and the message says so', async () => {
    const { taskId, value, ts } = await taskWithGateMessage();
    expect((await sendToSlackEndpoint(buttonClick('reject', value, 'U0ALICE', ts))).status).toBe(200);
    const opened = await slack.waitForCall('views.open', (c) => String((c.args.view as { private_metadata?: string }).private_metadata).includes(taskId));
    expect(opened.args).toMatchObject({ trigger_id: '4242.1337.0123456789abcdef', view: { type: 'modal', callback_id: 'stagegate_reject_reason' } });
    expect((await client.get(taskId)).state).toBe('awaitingPlanApproval');

    const submitted = await sendToSlackEndpoint(reasonSubmission(value, 'U0ALICE', 'Split the change in two'));
    expect(submitted.status).toBe(200);
    const update = await slack.waitForCall('chat.update', closedUpdate(ts));
    expect(textOf(update)).toContain(':x: Rejected by <@U0ALICE> via slack: Split the change in two');
    const record = await client.get(taskId);
    expect(record.context.planFeedback).toEqual(['Split the change in two']);
    expect(record.context.decisions[0]).toMatchObject({ decision: 'reject', by: 'slack:U0ALICE', via: 'slack', comment: 'Split the change in two' });
    // The planner planned again: the second visit gets a message of its own.
    await slack.waitForCall('chat.postMessage', gateMessageFor(taskId, 2));
  });

  it('asks the security group for a reason on Approve at a deploy gate held by security findings, and records the override', async () => {
    const policies: GatePolicies = { ...slackGates, security: { approvers: ['slack-group:S0SEC'], required: 1, protectedPaths: [] } };
    const taskId = await client.submit({ spec: { ...spec, title: INSECURE }, policies, maxReviewRounds: 2 });
    const plan = await slack.waitForCall('chat.postMessage', gateMessageFor(taskId));
    await sendToSlackEndpoint(buttonClick('approve', buttonValueOf(plan) as GateButtonValue, 'U0ALICE', String(plan.reply.ts)));
    const held = await slack.waitForCall('chat.postMessage', (c) => buttonValueOf(c)?.taskId === taskId && buttonValueOf(c)?.gate === 'deploy');
    const value = buttonValueOf(held) as GateButtonValue;
    expect(textOf(held)).toContain(':lock: *Held by high-severity security findings:*');
    expect(blocksOf(held).find((b) => b.type === 'context')?.elements?.[0]?.text).toContain('Approvers: <!subteam^S0SEC>');

    // The click asks for the reason instead of deciding.
    await sendToSlackEndpoint(buttonClick('approve', value, 'U0CAROL', String(held.reply.ts)));
    const opened = await slack.waitForCall('views.open', (c) => String((c.args.view as { private_metadata?: string }).private_metadata).includes(`"gate":"deploy"`) && String((c.args.view as { private_metadata?: string }).private_metadata).includes(taskId));
    expect(opened.args).toMatchObject({ view: { callback_id: 'stagegate_reject_reason', title: { text: 'Override' } } });
    expect((await client.get(taskId)).context.decisions.filter((d) => d.gate === 'deploy')).toEqual([]);

    // Someone outside the group is refused, even with a reason; the group's member passes the gate.
    await sendToSlackEndpoint(reasonSubmission(value, 'U0ALICE', 'looks fine to me', 'approve'));
    const refused = await slack.waitForCall('chat.postEphemeral', (c) => c.args.user === 'U0ALICE' && String(c.args.text).includes('high-severity'));
    expect(refused.args.text).toBe('high-severity security findings: only slack-group:S0SEC can override, with a reason; nothing changed.');
    await sendToSlackEndpoint(reasonSubmission(value, 'U0CAROL', 'the name is an enum checked upstream', 'approve'));
    const update = await slack.waitForCall('chat.update', closedUpdate(String(held.reply.ts)));
    expect(textOf(update)).toContain(':white_check_mark: Approved by <@U0CAROL> via slack: the name is an enum checked upstream');
    const record = await client.get(taskId);
    expect(record.context.decisions.filter((d) => d.gate === 'deploy' && d.counted)).toEqual([
      expect.objectContaining({ by: 'slack:U0CAROL', comment: 'the name is an enum checked upstream', securityOverride: true, principal: { groups: ['S0SEC'] } }),
    ]);
  });

  it('keeps the modal open, saying why, when the reason is empty', async () => {
    const { taskId, value } = await taskWithGateMessage();
    const res = await sendToSlackEndpoint(reasonSubmission(value, 'U0ALICE', '   '));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ response_action: 'errors', errors: { reason: 'Say why: the reason goes back to the agent.' } });
    expect((await client.get(taskId)).context.decisions).toEqual([]);
  });

  it('re-posts a reminder in the thread, mentioning the approvers, when the gate\'s reminder timer fires', async () => {
    const remind = { ...slackGates, plan: { ...slackGates.plan, timeout: { remindAfterMs: 300, onExpire: 'reject' as const } } };
    const { ts } = await taskWithGateMessage(remind);
    const reminder = await slack.waitForCall('chat.postMessage', (c) => c.args.thread_ts === ts);
    expect(reminder.args).toMatchObject({ channel: 'C0GATES', reply_broadcast: 'true' });
    expect(String(reminder.args.text)).toMatch(/^:alarm_clock: Reminder: task `t-[a-z0-9]+` \(Add a greeting\) still waits at the plan gate\. <@U0ALICE> <!subteam\^S0LEADS>$/);
  });

  it('posts nothing twice when the whole log is read again', async () => {
    const { taskId } = await taskWithGateMessage();
    await serve.stop();
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.delete(STREAMS.log, SLACK_CHANNEL_CONSUMER);
    serve = await startServe({ config, nc, log: silent, port: 0 });
    await waitFor('the Slack channel to read the whole log again', async () => {
      const info = await jsm.consumers.info(STREAMS.log, SLACK_CHANNEL_CONSUMER);
      return info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.stream_seq > 0 ? info : undefined;
    });
    expect(slack.callsOf('chat.postMessage', gateMessageFor(taskId))).toHaveLength(1);
  });
});

describe('session digests in Slack', () => {
  it('posts the report of a paused session to the channel the session names, once', async () => {
    const sessions = await createSessionClient(nc);
    const sessionId = await sessions.start({
      spec: {
        repo: '/tmp/repo',
        goal: 'migrate to v2',
        base: 'main',
        submittedBy: 'alice',
        parallel: 1,
        budget: {},
        onBudget: 'finish',
        maxItemAttempts: 2,
        maxRevisions: 3,
        digestTo: { slackChannel: 'digests' },
        pricing: {},
        models: { planner: 'm', coder: 'm', reviewer: 'm', deployer: 'm' },
      },
      policies: slackGates,
      maxReviewRounds: 1,
    });
    await waitFor('the session to be recorded', () => sessions.get(sessionId).catch(() => undefined));
    await sessions.pause(sessionId, 'alice', 'for the test');
    const posted = await slack.waitForCall('chat.postMessage', (c) => c.args.channel === 'digests');
    expect(String(posted.args.text)).toContain(`Stagegate session ${sessionId}: paused (paused)`);
    expect(String(posted.args.text)).toContain('Paused: paused by alice: for the test');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(slack.callsOf('chat.postMessage', (c) => c.args.channel === 'digests')).toHaveLength(1);
  });
});
