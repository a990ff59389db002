/**
 * A stage that runs past its timeout fails with a reason, so a job nobody finishes (a worker
 * that hangs while still heart-beating, a model that never answers) cannot hold a task forever.
 * The timeout is a scheduled `job.failed` for the stage's job, kept in the timers bucket from
 * dispatch until the job ends; if it fires first, the chart fails the stage like any failure.
 * A result that arrives later is stale and ignored.
 */
import type { JobFailed, ScheduledMessage, TaskSpec } from '../../core/bus/messages.js';
import { subjects } from '../../core/bus/subjects.js';
import { emptyUsage, type Effect, type StageRecord, type TaskContext } from '../../core/task-record.js';

function timeoutOf(context: TaskContext, jobId: string | null): { key: string; timer: ScheduledMessage } | undefined {
  if (jobId === null) return undefined;
  const record: StageRecord | undefined = context.stages.find((s) => s.jobId === jobId);
  const ms = record === undefined ? undefined : context.spec.stageTimeoutsMs?.[record.stage];
  if (record === undefined || ms === undefined) return undefined;
  const message: Omit<JobFailed, 'sentAt'> = {
    type: 'job.failed',
    taskId: context.taskId,
    msgId: `${jobId}:timeout`,
    jobId,
    usage: emptyUsage(),
    stage: record.stage,
    reason: `the ${record.stage} stage ran past its timeout (${formatMs(ms)}) without a result`,
  };
  const fireAt = new Date(Date.parse(record.startedAt) + ms).toISOString();
  return { key: `stage.${context.taskId}.${record.stage}.${record.attempt}`, timer: { subject: subjects.inbox(context.taskId), fireAt, message } };
}

export function planStageTimeoutEffects(before: TaskContext | undefined, after: TaskContext): Effect[] {
  if (before?.currentJobId === after.currentJobId) return [];
  const ended = before === undefined ? undefined : timeoutOf(before, before.currentJobId);
  const started = timeoutOf(after, after.currentJobId);
  return [
    ...(ended === undefined ? [] : [{ kind: 'timer.clear' as const, key: ended.key, msgId: `${ended.key}:clear`, payload: ended.timer }]),
    ...(started === undefined ? [] : [{ kind: 'timer.set' as const, key: started.key, msgId: `${started.key}:set`, payload: started.timer }]),
  ];
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)} s`;
}

/** The spec field a submitted task carries its configured stage timeouts in (none when none are set). */
export function withStageTimeouts(stageTimeoutsMs: TaskSpec['stageTimeoutsMs']): Pick<TaskSpec, 'stageTimeoutsMs'> {
  return stageTimeoutsMs === undefined || Object.keys(stageTimeoutsMs).length === 0 ? {} : { stageTimeoutsMs };
}
