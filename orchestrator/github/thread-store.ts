/**
 * The review comments serve sent to a task's coder, one KV entry per GitHub comment id in
 * `sg-github-review-threads`. Sending claims a comment (a KV create, tagged with the batch's
 * message id), so a comment goes to the coder in one round only, whichever delivery carries it
 * (its review's, its own `pull_request_review_comment`, a redelivery of either). After the
 * coder's push, the entry records the reply posted in its thread: a redelivered `code.committed`
 * finds it answered and replies nothing more.
 */
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { GITHUB_REVIEW_THREADS_BUCKET } from '../../core/bus/subjects.js';
import { ReviewAnswer } from '../../core/bus/messages.js';
import { versionedKv, WriteConflict, type Versioned, type VersionedKv } from '../../core/bus/versioned-kv.js';

export const ThreadEntry = z.object({
  taskId: z.string(),
  owner: z.string(),
  repo: z.string(),
  pullNumber: z.number().int().positive(),
  /** The message id of the round that carried the comment to the coder. */
  batch: z.string(),
  /** Set once the reply is posted (and, for an addressed comment, the thread resolved). */
  answered: z.object({ status: ReviewAnswer.shape.status, commit: z.string(), at: z.string() }).optional(),
});
export type ThreadEntry = z.infer<typeof ThreadEntry>;

export interface ThreadStore {
  /** Claims the comment for `entry.batch`: true when this batch holds it (now or from an earlier try), false when another does. */
  claim(commentId: number, entry: ThreadEntry): Promise<boolean>;
  load(commentId: number): Promise<Versioned<ThreadEntry | undefined>>;
  save(commentId: number, entry: ThreadEntry, basedOn: { revision: number | undefined }): Promise<Versioned<ThreadEntry>>;
}

export async function openThreadStore(nc: NatsConnection): Promise<ThreadStore> {
  const kv = await new Kvm(nc).create(GITHUB_REVIEW_THREADS_BUCKET, { history: 1 });
  const entries: VersionedKv<ThreadEntry> = versionedKv(kv, ThreadEntry, (key) => `GitHub review thread ${key}`);
  const keyOf = (commentId: number) => `c${commentId}`;
  return {
    async claim(commentId, entry) {
      try {
        await entries.save(keyOf(commentId), entry, { revision: undefined });
        return true;
      } catch (err) {
        if (!(err instanceof WriteConflict)) throw err;
        const held = await entries.load(keyOf(commentId));
        return held.value?.batch === entry.batch && held.value.taskId === entry.taskId;
      }
    },
    load: (commentId) => entries.load(keyOf(commentId)),
    save: (commentId, entry, basedOn) => entries.save(keyOf(commentId), entry, basedOn),
  };
}
