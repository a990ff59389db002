/**
 * What people do to sessions: start, read, list, pause, resume, stop, and read the session's
 * log. The CLI uses it; every command is checked against the stored session first (an unknown
 * session is a clear error), then published to the session's inbox.
 */
import { randomUUID } from 'node:crypto';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { STREAMS, subjects } from '../../core/bus/subjects.js';
import { SessionLogEntry, type SessionBudget, type SessionMessage, type SessionSpec } from '../../core/bus/session-messages.js';
import { openSessionBucket } from '../../core/bus/topology.js';
import { StagegateError } from '../../core/errors.js';
import { parseJsonAt } from '../../core/parse.js';
import type { GatePolicies } from '../../core/policy.js';
import type { SessionRecord } from '../../core/session-record.js';
import { listSessions, loadSession } from './session-store.js';

export interface SessionClient {
  start(input: { spec: SessionSpec; policies: GatePolicies; maxReviewRounds: number; sessionId?: string }): Promise<string>;
  get(sessionId: string): Promise<SessionRecord>;
  list(): Promise<SessionRecord[]>;
  pause(sessionId: string, by: string, reason?: string): Promise<void>;
  resume(sessionId: string, by: string, budget?: SessionBudget): Promise<void>;
  stop(sessionId: string, by: string, reason?: string): Promise<void>;
  /** The session's applied events and digests so far, in order. */
  log(sessionId: string): Promise<SessionLogEntry[]>;
}

export function newSessionId(): string {
  return `s-${randomUUID().replaceAll('-', '').slice(0, 10)}`;
}

export async function createSessionClient(nc: NatsConnection, now: () => Date = () => new Date()): Promise<SessionClient> {
  const js = jetstream(nc);
  const kv = await openSessionBucket(nc);
  const publish = (sessionId: string, message: SessionMessage) => js.publish(subjects.session(sessionId), JSON.stringify(message), { msgID: message.msgId });
  const requireSession = async (sessionId: string) => {
    const stored = await loadSession(kv, sessionId);
    if (stored === undefined) throw new StagegateError('SESSION_UNKNOWN', `unknown session ${sessionId}`);
    return stored.record;
  };
  const command = (sessionId: string, kind: string) => ({ sessionId, msgId: `${sessionId}:${kind}:${randomUUID()}`, sentAt: now().toISOString() });

  return {
    async start({ spec, policies, maxReviewRounds, sessionId = newSessionId() }) {
      await publish(sessionId, { type: 'session.start', sessionId, msgId: `${sessionId}:start`, sentAt: now().toISOString(), spec, policies, maxReviewRounds });
      return sessionId;
    },
    get: requireSession,
    async list() {
      return (await listSessions(kv)).sort((a, b) => a.context.createdAt.localeCompare(b.context.createdAt));
    },
    async pause(sessionId, by, reason) {
      await requireSession(sessionId);
      await publish(sessionId, { type: 'session.pause', ...command(sessionId, 'pause'), by, ...(reason === undefined ? {} : { reason }) });
    },
    async resume(sessionId, by, budget) {
      await requireSession(sessionId);
      await publish(sessionId, { type: 'session.resume', ...command(sessionId, 'resume'), by, ...(budget === undefined ? {} : { budget }) });
    },
    async stop(sessionId, by, reason) {
      await requireSession(sessionId);
      await publish(sessionId, { type: 'session.stop', ...command(sessionId, 'stop'), by, ...(reason === undefined ? {} : { reason }) });
    },
    async log(sessionId) {
      const consumer = await js.consumers.get(STREAMS.log, {
        filter_subjects: subjects.taskLog(sessionId),
        deliver_policy: DeliverPolicy.All,
      });
      const entries: SessionLogEntry[] = [];
      let pending = (await consumer.info(true)).num_pending;
      while (pending > 0) {
        const m = await consumer.next({ expires: 2_000 });
        if (m === null) break;
        entries.push(parseJsonAt(SessionLogEntry, m.string(), `session log entry on ${m.subject}`));
        pending = m.info.pending;
      }
      await consumer.delete();
      return entries;
    },
  };
}
