/**
 * Task records in the KV bucket. A write names the revision it was based on, so two
 * orchestrators applying events to the same task cannot both win: the loser re-reads.
 */
import type { KV } from '@nats-io/kv';
import { parseJsonAt } from '../core/parse.js';
import { TaskRecord } from '../core/task-record.js';

export interface StoredTask {
  record: TaskRecord;
  revision: number;
}

export class WriteConflict extends Error {
  override name = 'WriteConflict';
}

export async function loadTask(kv: KV, taskId: string): Promise<StoredTask | undefined> {
  const entry = await kv.get(taskId);
  if (entry === null || entry.operation !== 'PUT') return undefined;
  return { record: parseJsonAt(TaskRecord, entry.string(), `task record ${taskId}`, taskId), revision: entry.revision };
}

/** Writes the record if the stored revision is still `basedOn` (undefined: the task must not exist yet). */
export async function commitTask(kv: KV, record: TaskRecord, basedOn: number | undefined): Promise<number> {
  const data = JSON.stringify(record);
  try {
    return basedOn === undefined
      ? await kv.create(record.context.taskId, data)
      : await kv.update(record.context.taskId, data, basedOn);
  } catch (err) {
    if (err instanceof Error && /wrong last sequence|key exists/i.test(err.message)) {
      throw new WriteConflict(`task ${record.context.taskId} was written by someone else`, { cause: err });
    }
    throw err;
  }
}
