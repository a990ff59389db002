/** How a task reads over the HTTP API: the record without the orchestrator's bookkeeping. */
import { gateAt, type TaskRecord } from '../../core/task-record.js';

export function taskSummary(record: TaskRecord) {
  const c = record.context;
  const gate = gateAt(record.state);
  return {
    taskId: c.taskId,
    state: record.state,
    waitingAt: gate === undefined ? null : { gate, visit: c.gateVisits[gate] },
    title: c.spec.title,
    repo: c.spec.repo,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
  };
}

export function taskDetail(record: TaskRecord) {
  const c = record.context;
  return {
    ...taskSummary(record),
    spec: c.spec,
    branch: c.branch,
    plan: c.plan,
    verdict: c.verdict,
    implementation: c.implementation,
    deployed: c.deployed,
    pendingCommand: c.pendingCommand,
    reviewRound: c.reviewRound,
    decisions: c.decisions,
    stages: c.stages,
    usage: c.usage,
    error: c.error,
  };
}
