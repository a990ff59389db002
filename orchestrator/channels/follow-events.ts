/**
 * A channel's durable consumer on SG_LOG, reading every applied event (`task.event`) once, in
 * order, across restarts (`follow-log.ts`). Channels reconcile from the task record rather
 * than from the event alone, so after an event is given up the task's next event repairs what
 * it can.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { TaskLogEntry, type TaskEventRecorded } from '../../core/bus/messages.js';
import { subjects } from '../../core/bus/subjects.js';
import type { Logger } from '../../core/log.js';
import { followLog, type FollowingLog } from './follow-log.js';

export interface FollowEventsOptions {
  nc: NatsConnection;
  /** The durable consumer's name: one per channel, shared by that channel's processes. */
  consumer: string;
  log: Logger;
  handle(entry: TaskEventRecorded): Promise<void>;
}

export type FollowingEvents = FollowingLog;

export function followAppliedEvents(options: FollowEventsOptions): Promise<FollowingEvents> {
  return followLog({
    nc: options.nc,
    consumer: options.consumer,
    filterSubject: subjects.allTaskEvents,
    schema: TaskLogEntry,
    wanted: (entry) => entry.type === 'task.event',
    describe: (entry) => ({ taskId: entry.taskId, msgId: entry.msgId }),
    log: options.log,
    handle: (entry) => (entry.type === 'task.event' ? options.handle(entry) : Promise.resolve()),
  });
}
