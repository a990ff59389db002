/**
 * The tasks each repository has running, for the running-task limit: `running.<repo>` in the
 * limits bucket → `{ tasks: [{ taskId, since }] }`. A start joins the set with compare-and-set,
 * so two processes at once cannot both take the last place. Nothing has to leave the set when
 * a task ends: each time the set is read, the tasks records show as done, failed or cancelled
 * are dropped, so the count follows the records however a task ended. A task in the set that no
 * orchestrator has recorded (its submission was lost before it reached the inbox) is dropped
 * after a grace period, so it cannot hold a place for ever.
 */
import type { KV } from '@nats-io/kv';
import { z } from 'zod';
import { TaskId } from '../../core/bus/messages.js';
import { retryOnConflict, versionedKv } from '../../core/bus/versioned-kv.js';
import { isFinished } from '../../core/task-record.js';
import { loadTask } from '../task-store.js';
import { keyToken } from './account.js';

const RunningSet = z.object({ tasks: z.array(z.object({ taskId: TaskId, since: z.iso.datetime() })) });
type RunningSet = z.infer<typeof RunningSet>;

/** How long a task may be in the set without a record: far longer than an orchestrator takes to record a submission. */
export const UNRECORDED_GRACE_MS = 10 * 60_000;

export interface RunningStores {
  /** The limits bucket. */
  limits: KV;
  /** The task records. */
  tasks: KV;
}

export type SlotAnswer = { taken: true; added: boolean } | { taken: false; running: string[] };

const sets = (kv: KV) => versionedKv(kv, RunningSet, (key) => `running tasks ${key}`);
const keyOf = (repo: string) => `running.${keyToken(repo)}`;

/**
 * Puts `taskId` in the repository's set if it is there already or the set has fewer than `cap`
 * tasks still running; otherwise answers with the ones that are. `added` says whether it joined now.
 */
export async function takeRunningSlot(stores: RunningStores, repo: string, taskId: string, cap: number, now: Date): Promise<SlotAnswer> {
  const key = keyOf(repo);
  return retryOnConflict(async () => {
    const { value, revision } = await sets(stores.limits).load(key);
    const before = value?.tasks ?? [];
    const running = await stillRunning(stores.tasks, before, taskId, now);
    if (running.some((t) => t.taskId === taskId)) {
      if (running.length !== before.length) await sets(stores.limits).save(key, { tasks: running }, { revision });
      return { taken: true, added: false };
    }
    if (running.length >= cap) {
      if (running.length !== before.length) await sets(stores.limits).save(key, { tasks: running }, { revision });
      return { taken: false, running: running.map((t) => t.taskId) };
    }
    await sets(stores.limits).save(key, { tasks: [...running, { taskId, since: now.toISOString() }] }, { revision });
    return { taken: true, added: true };
  });
}

/** Takes `taskId` out again (a later limit refused its start). */
export async function returnRunningSlot(limits: KV, repo: string, taskId: string): Promise<void> {
  const key = keyOf(repo);
  await retryOnConflict(async () => {
    const { value, revision } = await sets(limits).load(key);
    if (value === undefined || !value.tasks.some((t) => t.taskId === taskId)) return;
    await sets(limits).save(key, { tasks: value.tasks.filter((t) => t.taskId !== taskId) }, { revision });
  });
}

/** The set without the tasks that ended and the ones never recorded within the grace period. */
async function stillRunning(tasks: KV, set: RunningSet['tasks'], keep: string, now: Date): Promise<RunningSet['tasks']> {
  const verdicts = await Promise.all(
    set.map(async (entry) => {
      if (entry.taskId === keep) return true;
      const stored = await loadTask(tasks, entry.taskId);
      if (stored === undefined) return now.getTime() - Date.parse(entry.since) < UNRECORDED_GRACE_MS;
      return !isFinished(stored.record.state);
    }),
  );
  return set.filter((_, i) => verdicts[i]);
}
