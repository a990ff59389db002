/**
 * What a click does. Every handler acks Slack first (it allows 3 seconds), then decides through
 * the task client as `slack:<user id>`; whatever does not move the task (not an approver,
 * already decided, a visit that is over) is answered with an ephemeral message to that person
 * alone. The gate message itself is only ever changed by the log follower (`reconcile.ts`).
 */
import type { App, webApi } from '@slack/bolt';
import { z } from 'zod';
import type { Gate } from '../../../core/bus/messages.js';
import { errorMessage, isStagegateError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import { parseAt, parseJsonAt } from '../../../core/parse.js';
import { principalsNamedFor, type PrincipalFacts } from '../../../core/policy.js';
import { GATE_STATES, type TaskRecord } from '../../../core/task-record.js';
import { GateAlreadyDecided, decidingDecision, isWaitingAtVisit } from '../../gate-outcome.js';
import { gateStatusOf, policyInForce } from '../../gate-policy.js';
import type { TaskClient } from '../../task-client.js';
import { APPROVE_ACTION, REASON_BLOCK, REASON_INPUT, REASON_MODAL, REJECT_ACTION, reasonModal } from './gate-message.js';
import { GateButtonClick, GateButtonValue, ReasonModalMetadata, ReasonModalSubmission } from './payloads.js';

const UsergroupsReply = z.object({
  usergroups: z.array(z.object({ id: z.string().min(1), users: z.array(z.string()).default([]) })),
});

export interface InteractionDeps {
  app: App;
  web: webApi.WebClient;
  tasks: TaskClient;
  log: Logger;
}

interface Decision {
  value: GateButtonValue;
  userId: string;
  channel: string;
  decision: 'approve' | 'reject';
  comment?: string;
}

export function registerGateInteractions(deps: InteractionDeps): void {
  const { app, log } = deps;

  app.action(APPROVE_ACTION, async ({ ack, body }) => {
    await ack();
    const click = parseClick(body, log);
    if (click === undefined) return;
    const { value, userId, channel } = click;
    try {
      // An override of security findings needs a reason: the click asks for it first.
      const record = await deps.tasks.get(value.taskId);
      const held = isWaitingAtVisit(record, value.gate, value.visit) && gateStatusOf(record.state, record.context)?.securityBlock !== undefined;
      if (held) return await deps.web.views.open({ trigger_id: click.triggerId, view: reasonModal(value, channel, 'approve') }).then(() => {});
    } catch (err) {
      return await answerFailure(deps, channel, userId, value, err);
    }
    await decide(deps, { value, userId, channel, decision: 'approve' });
  });

  app.action(REJECT_ACTION, async ({ ack, body }) => {
    await ack();
    const click = parseClick(body, log);
    if (click === undefined) return;
    const { value, userId, channel } = click;
    try {
      // Look first: the Reject button of an old message must not ask for a reason nobody can use.
      const record = await deps.tasks.get(value.taskId);
      if (!isWaitingAtVisit(record, value.gate, value.visit)) return await tell(deps, channel, userId, visitOverText(record, value));
      await deps.web.views.open({ trigger_id: click.triggerId, view: reasonModal(value, channel, 'reject') });
    } catch (err) {
      await answerFailure(deps, channel, userId, value, err);
    }
  });

  app.view(REASON_MODAL, async ({ ack, body }) => {
    const parsed = ReasonModalSubmission.safeParse(body);
    if (!parsed.success) {
      await ack();
      return log.warn({ reason: parsed.error.message }, 'unexpected Slack view_submission payload ignored');
    }
    const submission = parsed.data;
    let meta: ReasonModalMetadata;
    try {
      meta = parseJsonAt(ReasonModalMetadata, submission.view.private_metadata, 'Slack reason modal metadata');
    } catch (err) {
      await ack();
      return log.warn({ reason: errorMessage(err) }, 'Slack reason modal with unreadable metadata ignored');
    }
    const reason = submission.view.state.values[REASON_BLOCK]?.[REASON_INPUT]?.value?.trim() ?? '';
    if (reason === '') {
      const why = meta.decision === 'approve' ? 'Say why: the reason is recorded with the override.' : 'Say why: the reason goes back to the agent.';
      return ack({ response_action: 'errors', errors: { [REASON_BLOCK]: why } });
    }
    await ack();
    const { channel, decision, ...value } = meta;
    await decide(deps, { value, userId: submission.user.id, channel, decision, comment: reason });
  });
}

function parseClick(body: unknown, log: Logger) {
  try {
    const click = parseAt(GateButtonClick, body, 'Slack block_actions payload');
    const action = click.actions[0] as { value: string };
    const value = parseJsonAt(GateButtonValue, action.value, 'Slack gate button value');
    return { value, userId: click.user.id, channel: click.channel.id, triggerId: click.trigger_id };
  } catch (err) {
    log.warn({ reason: errorMessage(err) }, 'unexpected Slack button payload ignored');
    return undefined;
  }
}

async function decide(deps: InteractionDeps, d: Decision): Promise<void> {
  const { value, userId, channel } = d;
  const by = `slack:${userId}`;
  const log = deps.log.child({ taskId: value.taskId, gate: value.gate, visit: value.visit, by });
  try {
    const principal = await principalFacts(deps, value, userId);
    const answer = await deps.tasks.decide({
      taskId: value.taskId,
      gate: value.gate,
      visit: value.visit,
      decision: d.decision,
      by,
      via: 'slack',
      ...(d.comment === undefined ? {} : { comment: d.comment }),
      ...(principal === undefined ? {} : { principal }),
      ...(value.sha === undefined ? {} : { sha: value.sha }),
    });
    log.info({ decision: d.decision, answer: answer.status, counted: answer.status === 'applied' ? answer.counted : undefined }, 'slack decision');
    if (answer.status === 'queued') {
      return await tell(deps, channel, userId, `Your ${d.decision === 'approve' ? 'approval' : 'rejection'} is recorded; no orchestrator has answered yet.`);
    }
    if (!answer.counted) return await tell(deps, channel, userId, `${answer.note ?? 'The policy does not count your decision'}; nothing changed.`);
    if (answer.state === GATE_STATES[value.gate]) {
      const record = await deps.tasks.get(value.taskId);
      return await tell(deps, channel, userId, `Your approval counts. ${stillMissing(record, value.gate, value.visit)}`);
    }
  } catch (err) {
    await answerFailure(deps, channel, userId, value, err);
  }
}

/** Stagegate's own refusals are for the person; anything else is logged and said briefly. */
async function answerFailure(deps: InteractionDeps, channel: string, userId: string, value: GateButtonValue, err: unknown) {
  if (isStagegateError(err)) return tell(deps, channel, userId, err.message);
  deps.log.error({ taskId: value.taskId, gate: value.gate, err: errorMessage(err) }, 'slack decision failed');
  await tell(deps, channel, userId, `Stagegate could not record your decision: ${errorMessage(err)}`).catch(() => {});
}

async function tell(deps: InteractionDeps, channel: string, user: string, text: string): Promise<void> {
  await deps.web.chat.postEphemeral({ channel, user, text });
}

function visitOverText(record: TaskRecord, value: GateButtonValue): string {
  const decided = decidingDecision(record, value.gate, value.visit);
  if (decided !== undefined) return new GateAlreadyDecided(value.taskId, decided).message;
  return `Task ${value.taskId} is ${record.state}, no longer waiting at this ${value.gate} gate; nothing changed.`;
}

function stillMissing(record: TaskRecord, gate: Gate, visit: number): string {
  const { required } = policyInForce(record.context, gate);
  const given = new Set(record.context.decisions.filter((d) => d.gate === gate && d.visit === visit && d.counted && d.decision === 'approve').map((d) => d.by));
  return `The ${gate} gate has ${given.size} of ${required} approvals it needs.`;
}

/**
 * Slack user groups the person is in, when the gate's policies name any (`slack-group:S…`):
 * the orchestrator never looks anyone up, so the channel says what it verified.
 */
async function principalFacts(deps: InteractionDeps, value: GateButtonValue, userId: string): Promise<PrincipalFacts | undefined> {
  const record = await deps.tasks.get(value.taskId);
  const named = principalsNamedFor(record.context.policies, value.gate).filter((p) => p.startsWith('slack-group:'));
  if (named.length === 0) return undefined;
  const reply = parseAt(UsergroupsReply, await deps.web.usergroups.list({ include_users: true }), 'Slack usergroups.list reply');
  return { groups: reply.usergroups.filter((g) => g.users.includes(userId)).map((g) => g.id) };
}
