/**
 * Nothing an orchestrator or a worker cannot handle is lost: a malformed message, one for a task
 * or session that does not exist, and one whose handling fails every time it is tried are kept
 * in SG_DEAD_LETTERS with why, shown by `stagegate dead-letters`, and sent back by `redrive`
 * once the cause is fixed. A real nats-server and orchestrator; the real CLI in a child process.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '../../core/bus/connect.js';
import { DeadLetter, retireToDeadLetters } from '../../core/bus/dead-letters.js';
import type { GateDecide, InboxMessage } from '../../core/bus/messages.js';
import type { SessionPause } from '../../core/bus/session-messages.js';
import { STREAMS, subjects } from '../../core/bus/subjects.js';
import { openTaskBucket } from '../../core/bus/topology.js';
import { createLogger } from '../../core/log.js';
import type { TaskRecord } from '../../core/task-record.js';
import { applyMessage } from '../../orchestrator/apply-message.js';
import type { TaskClient } from '../../orchestrator/task-client.js';
import { commitTask } from '../../orchestrator/task-store.js';
import { samplePlan } from '../helpers/canned-agents.js';
import { startCliHarness, type CliHarness } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait-for.js';

const RETRY = { attempts: 3, firstDelayMs: 50, maxDelayMs: 200 };
const manual = { approvers: ['tester'], required: 1, autoApprove: false };

let h: CliHarness;
let nc: NatsConnection;
let kv: KV;
let client: TaskClient;

const cli = (...args: string[]) => h.run(args);

async function deadLetters(...filter: string[]): Promise<DeadLetter[]> {
  const result = await cli('dead-letters', '--json', ...filter);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return DeadLetter.array().parse(JSON.parse(result.stdout));
}

beforeAll(async () => {
  h = await startCliHarness('dead-letters', { retry: RETRY });
  ({ nc, client } = h);
  kv = await openTaskBucket(nc);
});

afterAll(async () => {
  await h?.stop();
});

/** A task waiting at its plan gate, written straight to the bucket by the orchestrator's own pure step. */
async function taskAtPlanGate(taskId: string): Promise<TaskRecord> {
  const sentAt = new Date().toISOString();
  const messages: InboxMessage[] = [
    {
      type: 'task.submit', taskId, msgId: `${taskId}:submit`, sentAt,
      spec: { repo: '/tmp/repo', title: 'held at the plan gate', body: '', base: 'main', submittedBy: 'tester' },
      policies: { plan: manual, review: manual, deploy: manual },
      maxReviewRounds: 2,
    },
    { type: 'plan.proposed', taskId, msgId: `${taskId}:plan`, sentAt, jobId: `${taskId}:plan:1`, plan: samplePlan, usage: { calls: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 } },
  ];
  let record: TaskRecord | undefined;
  for (const message of messages) {
    const outcome = applyMessage(record, message);
    if (outcome.kind !== 'commit') throw new Error(`${message.type} did not commit`);
    record = outcome.record;
  }
  const held = record as TaskRecord;
  expect(held.state).toBe('awaitingPlanApproval');
  await commitTask(kv, held, undefined);
  return held;
}

function approval(taskId: string): GateDecide {
  return { type: 'gate.decide', taskId, msgId: `${taskId}:approve`, sentAt: new Date().toISOString(), gate: 'plan', decision: 'approve', by: 'tester', via: 'cli' };
}

describe('dead letters', () => {
  it('keeps a malformed message, and one for a task or session that never appears after a few tries, each with why', async () => {
    const js = jetstream(nc);
    await js.publish(subjects.inbox('t-garbled'), '{"type": "plan.prop');
    await js.publish(subjects.inbox('t-nobody'), JSON.stringify(approval('t-nobody')));
    const pause: SessionPause = { type: 'session.pause', sessionId: 's-nobody', msgId: 's-nobody:pause', sentAt: new Date().toISOString(), by: 'tester' };
    await js.publish(subjects.session('s-nobody'), JSON.stringify(pause));

    const letters = await waitFor('three dead letters', async () => {
      const kept = await deadLetters();
      return kept.length >= 3 ? kept : undefined;
    });
    const tried = (n: number, last: string) => `handling failed on each of its ${n} deliveries; the last time: ${last}`;
    expect(letters.map((l) => ({ subject: l.subject, reason: l.reason, deliveries: l.deliveries }))).toEqual(
      expect.arrayContaining([
        { subject: 'sg.inbox.t-garbled', reason: expect.stringMatching(/^message on sg\.inbox\.t-garbled: not valid JSON/), deliveries: 1 },
        // Its task or session may only be late: delivered again a few times first.
        { subject: 'sg.inbox.t-nobody', reason: tried(RETRY.attempts, 'no task t-nobody'), deliveries: RETRY.attempts },
        { subject: 'sg.session.s-nobody', reason: tried(RETRY.attempts, 'no session s-nobody'), deliveries: RETRY.attempts },
      ]),
    );
    // Kept as they arrived, and gone from the work queues (not left to come back).
    expect(letters.find((l) => l.subject === 'sg.inbox.t-garbled')?.data).toBe('{"type": "plan.prop');
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(STREAMS.inbox)).state.messages).toBe(0);
    expect((await jsm.streams.info(STREAMS.sessions)).state.messages).toBe(0);

    const text = await cli('dead-letters', '--task', 't-nobody');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('sg.inbox.t-nobody  (3 deliveries, given up by orchestrator)');
    expect(text.stdout).toContain('no task t-nobody');
    expect(text.stdout).not.toContain('t-garbled');
  });

  it('keeps a message once however often it is given up on, even when its reason quotes a Nats-Msg-Id header', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'TEST_SOURCE', subjects: ['test.source'] });
    await jetstream(nc).publish('test.source', 'Nats-Msg-Id: zzz');
    const consumer = await jetstream(nc).consumers.get('TEST_SOURCE');
    const msg = await consumer.next();
    if (msg === null) throw new Error('the test message was not delivered');
    const log = createLogger({ level: 'silent' });
    // Given up on twice: a crash between keeping it and terminating it, then its redelivery.
    await retireToDeadLetters(jetstream(nc), msg, `message on test.source: "${msg.string()}" is not valid JSON`, log);
    await retireToDeadLetters(jetstream(nc), msg, `message on test.source: "${msg.string()}" is not valid JSON`, log);
    const kept = (await deadLetters()).filter((l) => l.subject === 'test.source');
    expect(kept).toEqual([expect.objectContaining({ data: 'Nats-Msg-Id: zzz', reason: 'message on test.source: "Nats-Msg-Id: zzz" is not valid JSON', source: `TEST_SOURCE:${msg.seq}` })]);
    await jsm.streams.delete('TEST_SOURCE');
  });

  it('delivers a message that keeps failing a few times, keeps it, and applies it when redriven after the cause is fixed', async () => {
    const taskId = 't-corrupt';
    const good = await taskAtPlanGate(taskId);
    // A record this orchestrator cannot read: every try of the approval fails on it.
    await kv.put(taskId, JSON.stringify({ version: 1, state: 'awaitingPlanApproval' }));
    await jetstream(nc).publish(subjects.inbox(taskId), JSON.stringify(approval(taskId)));

    const [letter] = await waitFor('the approval kept as a dead letter', async () => {
      const kept = await deadLetters('--task', taskId);
      return kept.length > 0 ? kept : undefined;
    });
    expect(letter).toMatchObject({ subject: subjects.inbox(taskId), consumer: 'orchestrator', deliveries: RETRY.attempts });
    expect(letter?.reason).toMatch(/^handling failed on each of its 3 deliveries; the last time: task record t-corrupt: .*context/);

    // The cause fixed, the task's status points at what it missed; the approval goes through once sent back.
    await kv.put(taskId, JSON.stringify(good));
    const status = await cli('status', taskId);
    expect(status.stdout).toContain(`dead letters: 1 message to this task could not be handled; see stagegate dead-letters --task ${taskId}`);
    const redriven = await cli('dead-letters', 'redrive', String(letter?.seq));
    expect(redriven.stderr).toBe('');
    expect(redriven.stdout.trim()).toBe(`dead letter ${letter?.seq} sent again to sg.inbox.t-corrupt`);
    const moved = await waitFor('the task past its plan gate', async () => {
      const record = await client.get(taskId);
      return record.state === 'awaitingPlanApproval' ? undefined : record;
    });
    expect(moved.state).toBe('implementing');
    expect(moved.context.decisions).toEqual([expect.objectContaining({ gate: 'plan', decision: 'approve', by: 'tester' })]);
    expect(await deadLetters('--task', taskId)).toEqual([]);

    // Gone from the list: naming it again is an error that says so.
    const again = await cli('dead-letters', 'redrive', String(letter?.seq));
    expect(again.code).toBe(2);
    expect(again.stderr.trim()).toBe(`stagegate: no dead letter ${letter?.seq} (see stagegate dead-letters)`);
  });

  it('drops a dead letter for good', async () => {
    await jetstream(nc).publish(subjects.inbox('t-unwanted'), 'junk');
    const [letter] = await waitFor('the junk kept', async () => {
      const kept = await deadLetters('--task', 't-unwanted');
      return kept.length > 0 ? kept : undefined;
    });
    const dropped = await cli('dead-letters', 'drop', String(letter?.seq));
    expect(dropped.stdout.trim()).toBe(`dead letter ${letter?.seq} (sg.inbox.t-unwanted) deleted`);
    expect(await deadLetters('--task', 't-unwanted')).toEqual([]);
    const bad = await cli('dead-letters', 'drop', 'seven');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("expected a dead letter's number (see stagegate dead-letters), got 'seven'");
  });
});
