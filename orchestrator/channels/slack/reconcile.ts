/**
 * Brings a task's Slack messages in line with its record, whatever event prompted it: a gate
 * visit the task waits at has one message with buttons (posted once: claimed in the store
 * before chat.postMessage), a visit that is over has its message replaced by who decided it.
 * Redelivered, replayed or out-of-order events therefore change nothing twice.
 */
import { createHash } from 'node:crypto';
import type { webApi } from '@slack/bolt';
import { z } from 'zod';
import type { Gate, GateTimerFired } from '../../../core/bus/messages.js';
import type { Logger } from '../../../core/log.js';
import { parseAt } from '../../../core/parse.js';
import { effectivePolicy } from '../../../core/policy.js';
import { policyInForce } from '../../gate-policy.js';
import { gateAt, type TaskRecord } from '../../../core/task-record.js';
import { isWaitingAtVisit } from '../../gate-outcome.js';
import type { TaskClient } from '../../task-client.js';
import { WriteConflict } from '../../../core/bus/versioned-kv.js';
import { closedGateMessage, openGateMessage, reminderText, type Deciders, type SlackMessage } from './gate-message.js';
import { withMessage, type MessageStore, type PostedGateMessage } from './message-store.js';

/** A claim older than this is taken to be from a poster that died before it could finish. */
const STALE_CLAIM_MS = 60_000;
const MAX_CONFLICTS = 10;

export interface ReconcileDeps {
  tasks: TaskClient;
  store: MessageStore;
  web: webApi.WebClient;
  /** The configured channel (id or name) new gate messages go to. */
  channel: string;
  log: Logger;
  now: () => Date;
}

const PostedReply = z.object({ channel: z.string().min(1), ts: z.string().min(1) });

export async function reconcileGateMessages(deps: ReconcileDeps, taskId: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await reconcileOnce(deps, await deps.tasks.get(taskId));
    } catch (err) {
      if (!(err instanceof WriteConflict) || attempt >= MAX_CONFLICTS) throw err;
    }
  }
}

/** Who may decide the gate now: its policy's approvers, the escalation group's once escalated, the security group's while findings hold it. */
export function decidersAt(record: TaskRecord, gate: Gate, visit: number): Deciders {
  const open = record.context.gateVisit;
  const current = open !== null && open.gate === gate && open.visit === visit;
  return current ? policyInForce(record.context, gate) : effectivePolicy(record.context.policies, gate, false);
}

async function reconcileOnce(deps: ReconcileDeps, record: TaskRecord): Promise<void> {
  const { store, web, log } = deps;
  const taskId = record.context.taskId;
  const waiting = gateAt(record.state);
  const visit = waiting === undefined ? undefined : record.context.gateVisits[waiting];
  let stored = await store.load(taskId);

  for (const m of stored.value.messages) {
    if (m.status !== 'open' || m.ts === null || (m.gate === waiting && m.visit === visit)) continue;
    await update(web, m.channel, m.ts, closedGateMessage(record, m.gate, m.visit));
    stored = await store.save(taskId, withMessage(stored.value, { ...m, status: 'closed' }), stored);
    log.info({ taskId, gate: m.gate, visit: m.visit }, 'slack gate message closed');
  }
  if (waiting === undefined || visit === undefined) return;

  const message = openGateMessage(record, waiting, visit, decidersAt(record, waiting, visit));
  const shown = fingerprint(message);
  const current = stored.value.messages.find((m) => m.gate === waiting && m.visit === visit);
  if (current === undefined || (current.status === 'posting' && isStale(current, deps.now()))) {
    const claim: PostedGateMessage = { gate: waiting, visit, status: 'posting', channel: deps.channel, ts: null, claimedAt: deps.now().toISOString(), reminders: [] };
    stored = await store.save(taskId, withMessage(stored.value, claim), stored);
    const reply = await web.chat.postMessage({ channel: deps.channel, text: message.text, blocks: message.blocks });
    const posted = parseAt(PostedReply, reply, `Slack chat.postMessage reply for task ${taskId}`, taskId);
    await store.save(taskId, withMessage(stored.value, { ...claim, status: 'open', channel: posted.channel, ts: posted.ts, shown }), stored);
    log.info({ taskId, gate: waiting, visit, ts: posted.ts }, 'slack gate message posted');
  } else if (current.status === 'posting') {
    throw new Error(`the ${waiting} gate message of task ${taskId} is being posted by another process (claimed ${current.claimedAt})`);
  } else if (current.status === 'open' && current.ts !== null && current.shown !== shown) {
    await update(web, current.channel, current.ts, message);
    await store.save(taskId, withMessage(stored.value, { ...current, shown }), stored);
  }
}

/**
 * A reminder timer fired: a reply in the gate message's thread, also shown in the channel,
 * mentioning who may decide. Once per timer event, and only while the visit is still open.
 */
export async function postReminder(deps: ReconcileDeps, event: GateTimerFired): Promise<void> {
  const record = await deps.tasks.get(event.taskId);
  if (!isWaitingAtVisit(record, event.gate, event.visit)) return;
  const stored = await deps.store.load(event.taskId);
  const message = stored.value.messages.find((m) => m.gate === event.gate && m.visit === event.visit);
  if (message === undefined || message.status !== 'open' || message.ts === null || message.reminders.includes(event.msgId)) return;
  await deps.web.chat.postMessage({
    channel: message.channel,
    thread_ts: message.ts,
    reply_broadcast: true,
    text: reminderText(record, event.gate, decidersAt(record, event.gate, event.visit).approvers),
  });
  await deps.store.save(event.taskId, withMessage(stored.value, { ...message, reminders: [...message.reminders, event.msgId] }), stored);
  deps.log.info({ taskId: event.taskId, gate: event.gate, visit: event.visit }, 'slack gate reminder posted');
}

async function update(web: webApi.WebClient, channel: string, ts: string, message: SlackMessage): Promise<void> {
  await web.chat.update({ channel, ts, text: message.text, blocks: message.blocks });
}

function isStale(message: PostedGateMessage, now: Date): boolean {
  return now.getTime() - Date.parse(message.claimedAt) > STALE_CLAIM_MS;
}

function fingerprint(message: SlackMessage): string {
  return createHash('sha256').update(JSON.stringify(message.blocks)).digest('hex').slice(0, 16);
}
