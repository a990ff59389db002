/**
 * Follows one task's log until it ends, telling the person at the terminal what happens:
 * stage by stage, with who did it, elapsed time and tokens. At a gate it may ask them.
 */
import type { TaskLogEntry } from '../../core/bus/messages.js';
import type { TaskState } from '../../core/task-record.js';
import { gateAt, isFinished } from '../../core/task-record.js';
import type { TaskClient } from '../../orchestrator/task-client.js';
import { formatLogEntry } from '../format.js';

export interface FollowOptions {
  client: TaskClient;
  taskId: string;
  json: boolean;
  startedAt: number;
  /** Called when the task waits at a gate; decides it (the interactive demo asks a person). */
  onGate?: (gate: string) => Promise<void>;
  signal: AbortSignal;
}

export async function followTask(options: FollowOptions): Promise<string> {
  const { client, taskId, json, startedAt, signal } = options;
  for await (const entry of client.logs(taskId, { follow: true, signal })) {
    const elapsed = `+${((Date.now() - startedAt) / 1000).toFixed(1)}s`.padStart(7);
    console.log(json ? JSON.stringify(entry) : `${elapsed}  ${describe(entry)}`);
    if (entry.type !== 'task.event' || !entry.accepted) continue;
    if (isFinished(entry.state as TaskState)) return entry.state;
    const gate = gateAt(entry.state as TaskState);
    if (gate !== undefined && options.onGate !== undefined) await options.onGate(gate);
  }
  return 'interrupted';
}

function describe(entry: TaskLogEntry): string {
  return formatLogEntry(entry).replace(/^\S+\s+/, '');
}
