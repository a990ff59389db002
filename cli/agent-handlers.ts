/** Builds the job handler of one role from the configuration: the wiring of agents/. */
import type { JobHandler } from '../core/bus/job-worker.js';
import type { AgentRole, Stage } from '../core/bus/messages.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { createModelClient } from '../core/model/client.js';
import { createPlannerHandler } from '../agents/planner/worker.js';
import { createCoderHandler } from '../agents/coder/worker.js';
import { createReviewerHandler } from '../agents/reviewer/worker.js';
import { createDeployerHandler } from '../agents/deployer/worker.js';

export const STAGE_OF_ROLE = { planner: 'plan', coder: 'implement', reviewer: 'review', deployer: 'deploy' } as const satisfies Record<AgentRole, Stage>;

export function createHandler<R extends AgentRole>(role: R, config: Readonly<Config>, log: Logger): JobHandler<R> {
  const common = { workDir: config.workDir, commandTimeoutMs: config.commandTimeoutMs };
  const handlers: { [K in AgentRole]: () => JobHandler<K> } = {
    planner: () => createPlannerHandler({ ...common, model: createModelClient(config.model, log) }),
    coder: () => createCoderHandler({ ...common, model: createModelClient(config.model, log), maxAttempts: config.coder.maxAttempts }),
    reviewer: () => createReviewerHandler({ ...common, model: createModelClient(config.model, log) }),
    deployer: () => createDeployerHandler(common),
  };
  return handlers[role]() as JobHandler<R>;
}
