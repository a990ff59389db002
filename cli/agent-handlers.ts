/** Builds the job handler of one role from the configuration: the wiring of agents/. */
import type { JobHandler } from '../core/bus/job-worker.js';
import type { AgentRole, Stage } from '../core/bus/messages.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { createModelClient } from '../core/model/client.js';
import { createTurnClient } from '../core/model/turn.js';
import { createSandbox, type Sandbox } from '../core/sandbox/index.js';
import { createPlannerHandler } from '../agents/planner/worker.js';
import { createCoderHandler } from '../agents/coder/worker.js';
import { validateApprovalPatterns } from '../agents/coder/harness/tools/index.js';
import { createReviewerHandler } from '../agents/reviewer/worker.js';
import { createDeployerHandler } from '../agents/deployer/worker.js';

export const STAGE_OF_ROLE = { planner: 'plan', coder: 'implement', reviewer: 'review', deployer: 'deploy' } as const satisfies Record<AgentRole, Stage>;

export function createHandler<R extends AgentRole>(role: R, config: Readonly<Config>, log: Logger): JobHandler<R> {
  const common = { workDir: config.workDir, commandTimeoutMs: config.commandTimeoutMs };
  const handlers: { [K in AgentRole]: () => JobHandler<K> } = {
    planner: () => createPlannerHandler({ ...common, model: createModelClient(config.model, log) }),
    coder: () => {
      validateApprovalPatterns(config.coder.requireApproval);
      const turnClient = createTurnClient(config.model, 'coder', log);
      let sandbox: Promise<Sandbox> | undefined;
      return createCoderHandler({
        ...common,
        turnClient,
        coder: config.coder,
        price: config.model.pricing[turnClient.model],
        // Created at the first job, so a worker without bwrap still starts and says why each job fails.
        sandbox: () =>
          (sandbox ??= createSandbox({ allowUnsandboxed: config.coder.allowUnsandboxed, log }).catch((err: unknown) => {
            sandbox = undefined;
            throw err;
          })),
      });
    },
    reviewer: () => createReviewerHandler({ ...common, model: createModelClient(config.model, log) }),
    deployer: () => createDeployerHandler(common),
  };
  return handlers[role]() as JobHandler<R>;
}
