/** Session records in the sessions bucket, written with compare-and-set like task records. */
import type { KV } from '@nats-io/kv';
import { versionedKv } from '../../core/bus/versioned-kv.js';
import { SessionRecord } from '../../core/session-record.js';

export interface StoredSession {
  record: SessionRecord;
  revision: number;
}

const records = (kv: KV) => versionedKv(kv, SessionRecord, (sessionId) => `session record ${sessionId}`);

export async function loadSession(kv: KV, sessionId: string): Promise<StoredSession | undefined> {
  const { value, revision } = await records(kv).load(sessionId);
  return value === undefined || revision === undefined ? undefined : { record: value, revision };
}

/** Writes the record if the stored revision is still `basedOn` (undefined: the session must not exist yet). */
export async function commitSession(kv: KV, record: SessionRecord, basedOn: number | undefined): Promise<number> {
  const saved = await records(kv).save(record.context.sessionId, record, { revision: basedOn });
  return saved.revision as number;
}

export async function listSessions(kv: KV): Promise<SessionRecord[]> {
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  const loaded = await Promise.all(keys.map((key) => loadSession(kv, key)));
  return loaded.flatMap((s) => (s === undefined ? [] : [s.record]));
}
