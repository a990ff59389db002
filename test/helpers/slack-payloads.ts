/**
 * What Slack sends the channel (recorded payloads from test/fixtures/slack, filled in and checked
 * by the production schemas so a stale fixture fails) and how to read what the channel sent.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GateButtonClick, ReasonModalSubmission, type GateButtonValue } from '../../orchestrator/channels/slack/payloads.js';
import type { SlackCall } from '../fakes/slack-api.js';

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(new URL(`../fixtures/slack/${name}`, import.meta.url), 'utf8')) as Record<string, unknown>;

export function buttonClick(action: 'approve' | 'reject', value: GateButtonValue, userId: string, messageTs: string): Record<string, unknown> {
  const payload = fixture('block-actions.json');
  const [button] = payload.actions as Record<string, unknown>[];
  Object.assign(payload, {
    user: { ...(payload.user as object), id: userId },
    container: { ...(payload.container as object), message_ts: messageTs },
    actions: [{ ...button, action_id: `stagegate_${action}`, value: JSON.stringify(value) }],
  });
  GateButtonClick.parse(payload);
  return payload;
}

export function reasonSubmission(value: GateButtonValue, userId: string, reason: string, decision: 'approve' | 'reject' = 'reject'): Record<string, unknown> {
  const payload = fixture('view-submission.json');
  const view = payload.view as Record<string, unknown>;
  Object.assign(payload, {
    user: { ...(payload.user as object), id: userId },
    view: {
      ...view,
      private_metadata: JSON.stringify({ ...value, channel: 'C0GATES', decision }),
      state: { values: { reason: { reason_input: { type: 'plain_text_input', value: reason } } } },
    },
  });
  ReasonModalSubmission.parse(payload);
  return payload;
}

/** The form body and headers of an interactive request, signed as Slack signs: HMAC-SHA256 of `v0:<ts>:<body>`. */
export function signedInteraction(payload: unknown, secret: string, timestamp = Math.floor(Date.now() / 1000)) {
  const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const signature = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  return {
    body,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': signature },
  };
}

type Block = { type: string; elements?: { value?: string; text?: string }[]; text?: { text: string } };
export const blocksOf = (call: SlackCall) => (call.args.blocks ?? []) as Block[];
export const actionsOf = (call: SlackCall) => blocksOf(call).find((b) => b.type === 'actions');
export const textOf = (call: SlackCall) => blocksOf(call).map((b) => b.text?.text ?? '').join('\n');

export function buttonValueOf(call: SlackCall): GateButtonValue | undefined {
  const value = actionsOf(call)?.elements?.[0]?.value;
  return value === undefined ? undefined : (JSON.parse(value) as GateButtonValue);
}

/** The chat.postMessage of a task's gate message at that visit. */
export const gateMessageFor = (taskId: string, visit = 1) => (c: SlackCall) =>
  buttonValueOf(c)?.taskId === taskId && buttonValueOf(c)?.visit === visit;

/** The chat.update that closed the message with this ts (its buttons gone). */
export const closedUpdate = (ts: string) => (c: SlackCall) => c.args.ts === ts && actionsOf(c) === undefined;
