/**
 * One message on a session's inbox: parse, load, step, commit (compare-and-set), perform, ack.
 * The same discipline as a task's message: nothing is acked before its effects are published,
 * and a lost race re-reads and steps again.
 */
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { retireToDeadLetters, retryOrRetire } from '../../core/bus/dead-letters.js';
import type { RetryPolicy } from '../../core/bus/retry-policy.js';
import { SessionMessage, sessionIdOf } from '../../core/bus/session-messages.js';
import { WriteConflict } from '../../core/bus/versioned-kv.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { parseJsonAt } from '../../core/parse.js';
import { performOwedEffects, type EffectStores } from '../effects.js';
import { recordKeyOf } from '../ordered-consumer.js';
import { applySessionMessage } from './session-step.js';
import { commitSession, loadSession } from './session-store.js';

const MAX_CONFLICT_RETRIES = 50;

export interface SessionHandlerDeps {
  js: JetStreamClient;
  kv: KV;
  stores: EffectStores;
  retry: RetryPolicy;
  log: Logger;
}

export async function handleSessionMessage(msg: JsMsg, deps: SessionHandlerDeps): Promise<void> {
  let message: SessionMessage;
  try {
    message = parseJsonAt(SessionMessage, msg.string(), `message on ${msg.subject}`);
    if (recordKeyOf(msg.subject) !== sessionIdOf(message)) throw new Error(`message on ${msg.subject} names session ${sessionIdOf(message)}`);
  } catch (err) {
    deps.log.warn({ subject: msg.subject, reason: errorMessage(err) }, 'malformed session message rejected');
    await retireToDeadLetters(deps.js, msg, errorMessage(err), deps.log);
    return;
  }
  const log = deps.log.child({ sessionId: sessionIdOf(message), msgId: message.msgId, type: message.type, ...('taskId' in message ? { taskId: message.taskId } : {}) });
  try {
    await applyAndAck(msg, message, deps, log);
  } catch (err) {
    await retryOrRetire(deps.js, msg, err, deps.retry, log);
  }
}

/** Load, step, commit, perform, ack; a session that does not exist (yet) is a failure like any other, tried again. */
async function applyAndAck(msg: JsMsg, message: SessionMessage, deps: SessionHandlerDeps, log: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const stored = await loadSession(deps.kv, sessionIdOf(message));
    const outcome = applySessionMessage(stored?.record, message);
    if (outcome.kind === 'unknown-session') throw new Error(`no session ${sessionIdOf(message)}`);
    if (outcome.kind === 'commit') {
      try {
        await commitSession(deps.kv, outcome.record, stored?.revision);
      } catch (err) {
        if (err instanceof WriteConflict && attempt < MAX_CONFLICT_RETRIES) continue;
        throw err;
      }
      log.info({ state: outcome.record.state }, 'session event applied');
    } else {
      log.info({ reason: outcome.reason }, 'session event not applied');
    }
    await performOwedEffects(deps.js, outcome.effects, deps.stores, outcome.kind === 'commit');
    msg.ack();
    return;
  }
}
