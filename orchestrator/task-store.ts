/**
 * Task records in the KV bucket. A write names the revision it was based on, so two
 * orchestrators applying events to the same task cannot both win: the loser re-reads.
 */
import type { KV } from '@nats-io/kv';
import { versionedKv } from '../core/bus/versioned-kv.js';
import { TaskRecord } from '../core/task-record.js';

export interface StoredTask {
  record: TaskRecord;
  revision: number;
}

const records = (kv: KV) => versionedKv(kv, TaskRecord, (taskId) => `task record ${taskId}`);

export async function loadTask(kv: KV, taskId: string): Promise<StoredTask | undefined> {
  const { value, revision } = await records(kv).load(taskId);
  return value === undefined || revision === undefined ? undefined : { record: value, revision };
}

/** Writes the record if the stored revision is still `basedOn` (undefined: the task must not exist yet). */
export async function commitTask(kv: KV, record: TaskRecord, basedOn: number | undefined): Promise<number> {
  const saved = await records(kv).save(record.context.taskId, record, { revision: basedOn });
  return saved.revision as number;
}
