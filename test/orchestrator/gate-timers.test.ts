/**
 * Durable gate timers over a real nats-server (2.9: no per-message TTL, no scheduled
 * messages). The schedulers and orchestrators run on hand-moved clocks, so "an hour later" is
 * one call; everything else (the bucket, the inbox, the audit log) is the real thing.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import type { GateTimer, TaskLogEntry, TaskSpec } from '../../core/bus/messages.js';
import { STREAMS, subjects, timerKey } from '../../core/bus/subjects.js';
import { ensureTopology, openTimerBucket } from '../../core/bus/topology.js';
import type { GatePolicies, GatePolicy } from '../../core/policy.js';
import type { RunningWorker } from '../../core/bus/job-worker.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { createTaskClient, newTaskId, type TaskClient } from '../../orchestrator/task-client.js';
import { startTimerScheduler, type TimerScheduler } from '../../orchestrator/timers/timer-scheduler.js';
import { keepTimer } from '../../orchestrator/timers/timer-store.js';
import { startCannedAgents } from '../helpers/canned-agents.js';
import { manualClock, type ManualClock } from '../helpers/manual-clock.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait-for.js';

const SEC = 1000;

function advanceTo(clock: ManualClock, time: number) {
  clock.advance(Math.max(time - clock.now(), 0));
}
const silent = pino({ level: 'silent' });

let server: TestNatsServer;
let nc: NatsConnection;
let timersKv: KV;
let client: TaskClient;
let agents: RunningWorker[];

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  timersKv = await openTimerBucket(nc);
  client = await createTaskClient(nc);
  agents = await startCannedAgents(nc);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await nc.drain();
  await server.cleanup();
});

/** Inbox messages stored for a task (nothing consumes them in the scheduler tests). */
async function storedInbox(taskId: string): Promise<number> {
  const info = await (await jetstreamManager(nc)).streams.info(STREAMS.inbox, { subjects_filter: subjects.inbox(taskId) });
  return info.state.subjects?.[subjects.inbox(taskId)] ?? 0;
}

async function timerKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of await timersKv.keys(`${prefix}.>`)) {
    const entry = await timersKv.get(key);
    if (entry?.operation === 'PUT') keys.push(key);
  }
  return keys.sort();
}

describe('timer scheduler', () => {
  const schedulers: TimerScheduler[] = [];
  afterAll(async () => {
    await Promise.all(schedulers.map((s) => s.stop()));
  });
  const startScheduler = async (clock: ManualClock) => {
    const scheduler = await startTimerScheduler({ kv: timersKv, js: jetstream(nc), log: silent, clock });
    schedulers.push(scheduler);
    await scheduler.ready;
    return scheduler;
  };
  const timerFor = (taskId: string, fireAt: number): GateTimer => ({
    taskId, gate: 'deploy', visit: 1, kind: 'expire', fireAt: new Date(fireAt).toISOString(),
  });

  it('fires a timer when it falls due, once, with its key as the message id, and deletes it', async () => {
    const taskId = newTaskId();
    const t0 = Date.parse('2030-01-01T00:00:00.000Z');
    const clock = manualClock(t0);
    const timer = timerFor(taskId, t0 + 60 * SEC);
    await keepTimer(timersKv, timerKey(timer), timer);
    const scheduler = await startScheduler(clock);
    const received: unknown[] = [];
    const sub = nc.subscribe(subjects.inbox(taskId), { callback: (_err, m) => void received.push(m.json()) });

    clock.advance(59 * SEC);
    await nc.flush();
    expect(scheduler.pendingKeys()).toContain(timerKey(timer));
    expect(received).toEqual([]);

    clock.advance(1 * SEC);
    await waitFor('the timer to fire', async () => (received.length > 0 ? received : undefined));
    await waitFor('the timer record to be deleted', async () => ((await timerKeys(taskId)).length === 0 ? true : undefined));
    expect(received).toEqual([
      {
        type: 'gate.timer_fired', taskId, msgId: `${taskId}:timer:deploy:1:expire`, sentAt: timer.fireAt,
        gate: 'deploy', visit: 1, kind: 'expire', fireAt: timer.fireAt,
      },
    ]);
    sub.unsubscribe();
  });

  it('fires a timer that fell due while no scheduler was running as soon as one starts', async () => {
    const taskId = newTaskId();
    const now = Date.parse('2030-01-02T00:00:00.000Z');
    const timer = timerFor(taskId, now - 3_600 * SEC);
    await keepTimer(timersKv, timerKey(timer), timer);
    await startScheduler(manualClock(now));
    await waitFor('the overdue timer to fire', async () => ((await storedInbox(taskId)) === 1 ? true : undefined));
    await waitFor('the timer record to be deleted', async () => ((await timerKeys(taskId)).length === 0 ? true : undefined));
  });

  it('keeps an existing timer when the same timer is written again (a repeated effect)', async () => {
    const taskId = newTaskId();
    const first = timerFor(taskId, Date.parse('2030-01-03T00:00:00.000Z'));
    await keepTimer(timersKv, timerKey(first), first);
    await keepTimer(timersKv, timerKey(first), { ...first, fireAt: '2031-01-01T00:00:00.000Z' });
    expect((await timersKv.get(timerKey(first)))?.json()).toEqual(first);
    await timersKv.delete(timerKey(first));
  });

  it('stores one message when two schedulers fire the same timer', async () => {
    const taskId = newTaskId();
    const t0 = Date.parse('2030-01-04T00:00:00.000Z');
    const timer = timerFor(taskId, t0 + 10 * SEC);
    const [a, b] = [manualClock(t0), manualClock(t0)];
    await Promise.all([startScheduler(a), startScheduler(b)]);
    await keepTimer(timersKv, timerKey(timer), timer);
    await waitFor('both schedulers to hold the timer', async () =>
      schedulers.slice(-2).every((s) => s.pendingKeys().includes(timerKey(timer))) ? true : undefined,
    );
    a.advance(10 * SEC);
    b.advance(10 * SEC);
    await waitFor('the timer record to be deleted', async () => ((await timerKeys(taskId)).length === 0 ? true : undefined));
    expect(await storedInbox(taskId)).toBe(1);
  });
});

describe('orchestrators and gate timeouts', () => {
  const spec: TaskSpec = { repo: '/tmp/repo', title: 'Add a greeting', body: '', base: 'main', submittedBy: 'sam' };
  const auto: GatePolicy = { approvers: ['sam'], required: 1, autoApprove: true };
  /** Remind after a minute, escalate to carol after two; alice and bob both have to approve until then. */
  const policies: GatePolicies = {
    plan: auto,
    review: auto,
    deploy: {
      approvers: ['alice', 'bob'],
      required: 2,
      autoApprove: false,
      timeout: { remindAfterMs: 60 * SEC, expireAfterMs: 120 * SEC, onExpire: 'escalate', escalateTo: { approvers: ['carol'], required: 1 } },
    },
  };
  const running: RunningOrchestrator[] = [];
  afterAll(async () => {
    await Promise.all(running.map((o) => o.stop()));
  });
  const start = async (clock: ManualClock) => {
    const orchestrator = await startOrchestrator({ nc, log: silent, clock });
    running.push(orchestrator);
    await orchestrator.timers.ready;
    return orchestrator;
  };
  const stop = async (orchestrator: RunningOrchestrator) => {
    await orchestrator.stop();
    running.splice(running.indexOf(orchestrator), 1);
  };
  const record = (taskId: string) => client.get(taskId);
  async function auditLog(taskId: string): Promise<Array<Extract<TaskLogEntry, { type: 'task.event' }>>> {
    const entries = [];
    for await (const entry of client.logs(taskId)) if (entry.type === 'task.event') entries.push(entry);
    return entries;
  }
  const timerEntries = async (taskId: string) =>
    (await auditLog(taskId)).flatMap((e) => (e.event.type === 'gate.timer_fired' ? [`${e.event.kind}:${e.accepted}:${e.state}`] : []));

  async function toDeployGate(): Promise<{ taskId: string; openedAt: number }> {
    const taskId = await client.submit({ spec, policies, maxReviewRounds: 1 });
    const at = await waitFor('the deploy gate', async () => {
      const r = await record(taskId).catch(() => undefined);
      return r?.state === 'awaitingDeployApproval' ? r : undefined;
    });
    const openedAt = at.context.gateVisit?.openedAt;
    if (openedAt === undefined) throw new Error('the deploy gate has no visit record');
    await waitFor('both timers in the bucket', async () => ((await timerKeys(taskId)).length === 2 ? true : undefined));
    return { taskId, openedAt: Date.parse(openedAt) };
  }

  it('escalates exactly once when the orchestrator restarts between the reminder and the expiry', async () => {
    const clock = manualClock(Date.now());
    const before = await start(clock);
    const { taskId, openedAt } = await toDeployGate();
    advanceTo(clock, openedAt + 61 * SEC);

    await waitFor('the reminder', async () => ((await record(taskId)).context.gateVisit?.timers[0]?.firedAt ? true : undefined));
    await waitFor('only the expiry left in the bucket', async () =>
      (await timerKeys(taskId)).join() === `${taskId}.deploy.1.expire` ? true : undefined,
    );
    await client.decide({ taskId, decision: 'approve', by: 'alice', via: 'cli' });

    // Restart: this orchestrator stops before the expiry, the next one starts after it.
    await stop(before);
    await start(manualClock(openedAt + 10 * 60 * SEC));
    await waitFor('the escalation', async () => ((await record(taskId)).context.gateVisit?.escalatedAt ? true : undefined));
    expect(await timerKeys(taskId)).toEqual([]);

    const escalated = await record(taskId);
    expect(escalated.state).toBe('awaitingDeployApproval');
    const refused = await client.decide({ taskId, decision: 'approve', by: 'bob', via: 'cli' });
    expect(refused).toMatchObject({ counted: false, note: 'bob is not an approver for the deploy gate (escalated: the escalation group decides)' });
    await client.decide({ taskId, decision: 'approve', by: 'carol', via: 'cli' });
    await waitFor('done', async () => ((await record(taskId)).state === 'done' ? true : undefined));

    expect(await timerEntries(taskId)).toEqual(['remind:true:awaitingDeployApproval', 'expire:true:awaitingDeployApproval']);
    const reminder = (await auditLog(taskId)).find((e) => e.event.type === 'gate.timer_fired');
    expect(reminder?.gate).toMatchObject({ gate: 'deploy', approvers: ['alice', 'bob'], approvals: 0, required: 2, escalated: false });
  });

  it('applies one expiry when two orchestrators hold the same timers', async () => {
    await Promise.all(running.splice(0).map((o) => o.stop()));
    const clocks = [manualClock(Date.now()), manualClock(Date.now())];
    await Promise.all(clocks.map(start));
    const { taskId, openedAt } = await toDeployGate();
    await waitFor('both schedulers to hold the expiry', async () =>
      running.every((o) => o.timers.pendingKeys().includes(`${taskId}.deploy.1.expire`)) ? true : undefined,
    );
    for (const clock of clocks) advanceTo(clock, openedAt + 5 * 60 * SEC);

    await waitFor('the escalation', async () => ((await record(taskId)).context.gateVisit?.escalatedAt ? true : undefined));
    await waitFor('the timers to be gone', async () => ((await timerKeys(taskId)).length === 0 ? true : undefined));
    // Both timers fell due at once: one reminder and one expiry, whichever orchestrator fired
    // or applied them (the two may apply them in either order).
    expect((await timerEntries(taskId)).sort()).toEqual(['expire:true:awaitingDeployApproval', 'remind:true:awaitingDeployApproval']);
  });

  it('clears the timers when the gate is decided before they fall due', async () => {
    await Promise.all(running.splice(0).map((o) => o.stop()));
    await start(manualClock(Date.now()));
    const { taskId } = await toDeployGate();
    await client.decide({ taskId, decision: 'approve', by: 'alice', via: 'cli' });
    await client.decide({ taskId, decision: 'approve', by: 'bob', via: 'cli' });
    await waitFor('done', async () => ((await record(taskId)).state === 'done' ? true : undefined));
    expect(await timerKeys(taskId)).toEqual([]);
    await waitFor('the scheduler to drop them', async () =>
      running[0]?.timers.pendingKeys().some((k) => k.startsWith(taskId)) ? undefined : true,
    );
  });
});
