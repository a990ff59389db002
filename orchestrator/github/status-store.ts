/**
 * Each task's status comment, one KV entry per task in `sg-channel-github`: where it is, its
 * id once created, what it shows and which state label the issue carries. Writes name the
 * revision they read, so two serve processes never both create a comment: the second sees
 * the first one's claim (`creating`) and waits for it.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { GITHUB_CHANNEL_BUCKET } from '../../core/bus/subjects.js';
import { parseJsonAt } from '../../core/parse.js';
import { WriteConflict } from '../task-store.js';

export const StatusComment = z.object({
  owner: z.string(),
  repo: z.string(),
  issueNumber: z.number().int().positive(),
  /** `creating`: claimed, the comment is being posted (or a crash cut that short). */
  status: z.enum(['creating', 'created']),
  commentId: z.number().int().positive().nullable(),
  claimedAt: z.string(),
  /** A fingerprint of the body last written, to skip edits that change nothing. */
  shown: z.string().optional(),
  /** The `stagegate:<state>` label last put on the issue. */
  label: z.string().optional(),
  /** Reminder timer events already posted, by msgId. */
  reminders: z.array(z.string()).optional(),
});
export type StatusComment = z.infer<typeof StatusComment>;

export interface StoredStatus {
  value: StatusComment | undefined;
  revision: number | undefined;
}

export interface StatusStore {
  load(taskId: string): Promise<StoredStatus>;
  /** Writes if the entry is still at `basedOn.revision`; throws WriteConflict otherwise. */
  save(taskId: string, value: StatusComment, basedOn: StoredStatus): Promise<StoredStatus>;
}

export async function openStatusStore(nc: NatsConnection): Promise<StatusStore> {
  const kv: KV = await new Kvm(nc).create(GITHUB_CHANNEL_BUCKET, { history: 1 });
  return {
    async load(taskId) {
      const entry = await kv.get(taskId);
      if (entry === null || entry.operation !== 'PUT') return { value: undefined, revision: undefined };
      return { value: parseJsonAt(StatusComment, entry.string(), `GitHub status comment of task ${taskId}`, taskId), revision: entry.revision };
    },
    async save(taskId, value, basedOn) {
      const data = JSON.stringify(value);
      try {
        const revision = basedOn.revision === undefined ? await kv.create(taskId, data) : await kv.update(taskId, data, basedOn.revision);
        return { value, revision };
      } catch (err) {
        if (err instanceof Error && /wrong last sequence|key exists/i.test(err.message)) {
          throw new WriteConflict(`GitHub status comment of task ${taskId} was written by someone else`, { cause: err });
        }
        throw err;
      }
    },
  };
}
