/**
 * The review comments serve took for a task's coder, one KV entry per GitHub comment in
 * `sg-github-review-threads` (key `<task id>.c<comment id>`). Taking claims a comment (a KV
 * create), so a comment goes to the coder in one round only, whichever delivery carries it (its
 * review's, its own `pull_request_review_comment`, a redelivery of either). A comment written
 * while the coder works is kept waiting (`batch: null`, with its text) and goes with the next
 * round; taking it then is a compare-and-set, so only one round gets it. After the coder's push,
 * the entry records the reply posted in its thread: a redelivered `code.committed` finds it
 * answered and replies nothing more.
 *
 * Entries are dropped 90 days after their last write. A comment waits only while the coder,
 * reviewer or CI works, and a redelivery comes within minutes; what goes after 90 days is only
 * the memory that a thread was answered, so a reply there much later is taken as a new comment.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { CoderReviewComment, ReviewAnswer } from '../../core/bus/messages.js';
import { GITHUB_REVIEW_THREADS_BUCKET } from '../../core/bus/subjects.js';
import { openAgingBucket } from '../../core/bus/topology.js';
import { versionedKv, WriteConflict, type Versioned, type VersionedKv } from '../../core/bus/versioned-kv.js';

export const ThreadEntry = z.object({
  taskId: z.string(),
  owner: z.string(),
  repo: z.string(),
  pullNumber: z.number().int().positive(),
  /** The message id of the round that carried the comment to the coder; null while it waits for the next round. */
  batch: z.string().nullable(),
  /** The comment as the coder reads it, and who wrote it (`github:<login>`). */
  comment: CoderReviewComment,
  by: z.string(),
  /** For a reply in a thread: the thread's first comment, where GitHub takes the answer. */
  threadRoot: z.number().int().positive().optional(),
  /** Set once the reply is posted (and, for an addressed comment, the thread resolved). */
  answered: z.object({ status: ReviewAnswer.shape.status, commit: z.string(), at: z.string() }).optional(),
});
export type ThreadEntry = z.infer<typeof ThreadEntry>;

export interface StoredThread {
  commentId: number;
  entry: ThreadEntry;
  revision: number;
}

export interface ThreadStore {
  /** Claims the comment for `entry.batch`: true when this batch holds it (now or from an earlier try), false when another does. */
  claim(commentId: number, entry: ThreadEntry): Promise<boolean>;
  load(taskId: string, commentId: number): Promise<Versioned<ThreadEntry | undefined>>;
  save(commentId: number, entry: ThreadEntry, basedOn: { revision: number | undefined }): Promise<Versioned<ThreadEntry>>;
  /** The task's comments waiting for the next round, oldest first. */
  waiting(taskId: string): Promise<StoredThread[]>;
  /** Moves a waiting comment into `batch`; false when another round took it first. */
  take(stored: StoredThread, batch: string): Promise<boolean>;
}

const keyOf = (taskId: string, commentId: number) => `${taskId}.c${commentId}`;

const KEPT_MS = 90 * 24 * 60 * 60_000;

export async function openThreadStore(nc: NatsConnection): Promise<ThreadStore> {
  const kv = await openAgingBucket(nc, GITHUB_REVIEW_THREADS_BUCKET, KEPT_MS);
  const entries: VersionedKv<ThreadEntry> = versionedKv(kv, ThreadEntry, (key) => `GitHub review thread ${key}`);
  const store: ThreadStore = {
    async claim(commentId, entry) {
      try {
        await entries.save(keyOf(entry.taskId, commentId), entry, { revision: undefined });
        return true;
      } catch (err) {
        if (!(err instanceof WriteConflict)) throw err;
        const held = await entries.load(keyOf(entry.taskId, commentId));
        return held.value?.batch === entry.batch;
      }
    },
    load: (taskId, commentId) => entries.load(keyOf(taskId, commentId)),
    save: (commentId, entry, basedOn) => entries.save(keyOf(entry.taskId, commentId), entry, basedOn),
    async waiting(taskId) {
      const found: StoredThread[] = [];
      const seen = new Set<string>();
      for await (const key of await kv.keys(`${taskId}.*`)) {
        // A key written during the listing may be named twice.
        if (seen.has(key)) continue;
        seen.add(key);
        const commentId = Number(key.slice(key.lastIndexOf('.c') + 2));
        const held = await entries.load(key);
        if (held.value?.batch === null && held.revision !== undefined) found.push({ commentId, entry: held.value, revision: held.revision });
      }
      return found.sort((a, b) => a.commentId - b.commentId);
    },
    async take(stored, batch) {
      try {
        await entries.save(keyOf(stored.entry.taskId, stored.commentId), { ...stored.entry, batch }, { revision: stored.revision });
        return true;
      } catch (err) {
        if (err instanceof WriteConflict) return false;
        throw err;
      }
    },
  };
  return store;
}
