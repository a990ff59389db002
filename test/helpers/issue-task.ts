/** Waiting for the task an issue started to reach a state; a task that failed ends the wait with its reason. */
import type { TaskRecord } from '../../core/task-record.js';
import type { TaskClient } from '../../orchestrator/task-client.js';
import { waitFor } from './wait-for.js';

export function issueTask(tasks: TaskClient, issueNumber: number, accept: (r: TaskRecord) => boolean, what: string, timeoutMs = 60_000): Promise<TaskRecord> {
  return waitFor(
    `the task of issue #${issueNumber} ${what}`,
    async () => {
      const record = (await tasks.list()).find((r) => r.context.spec.source?.issueNumber === issueNumber);
      if (record?.state === 'failed') throw new Error(`task failed: ${record.context.error?.reason}`);
      return record !== undefined && accept(record) ? record : undefined;
    },
    timeoutMs,
  );
}
