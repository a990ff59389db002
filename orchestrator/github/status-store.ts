/**
 * Each task's status comment, one KV entry per task in `sg-channel-github`: where it is, its
 * id once created, what it shows and which state label the issue carries. Writes name the
 * revision they read, so two serve processes never both create a comment: the second sees
 * the first one's claim (`creating`) and waits for it.
 */
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { GITHUB_CHANNEL_BUCKET } from '../../core/bus/subjects.js';
import { versionedKv, type Versioned, type VersionedKv } from '../../core/bus/versioned-kv.js';

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

export type StoredStatus = Versioned<StatusComment | undefined>;

export type StatusStore = VersionedKv<StatusComment>;

export async function openStatusStore(nc: NatsConnection): Promise<StatusStore> {
  const kv = await new Kvm(nc).create(GITHUB_CHANNEL_BUCKET, { history: 1 });
  return versionedKv(kv, StatusComment, (taskId) => `GitHub status comment of task ${taskId}`);
}
