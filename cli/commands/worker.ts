import { Argument, type Command } from 'commander';
import { startJobWorker } from '../../core/bus/job-worker.js';
import { AgentRole, STAGE_OF_ROLE } from '../../core/bus/messages.js';
import { dropSecretEnv, SECRET_ENV_BY_ROLE } from '../../core/exec/secret-env.js';
import { createSecretRedactor, secretValuesOf } from '../../core/security/redact-secrets.js';
import { configForRole, createHandler, describeSandbox, modelOfRole } from '../agent-handlers.js';
import { openRuntime, untilSignal } from '../runtime.js';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run the worker of one agent role; several workers of a role share its jobs')
    .addArgument(new Argument('<role>', 'agent role').choices(AgentRole.options))
    .option('--concurrency <n>', 'jobs run at once', (v) => Number.parseInt(v, 10), 1)
    .action(async (role: AgentRole, options: { concurrency: number }, command: Command) => {
      // A worker holds only its role's credentials, whatever environment it was started with.
      dropSecretEnv(process.env, SECRET_ENV_BY_ROLE[role]);
      const runtime = await openRuntime(command, role, true);
      const { nc, log } = runtime;
      const config = configForRole(role, runtime.config);
      const workerLog = log.child({ role });
      const worker = await startJobWorker({
        nc,
        role,
        stage: STAGE_OF_ROLE[role],
        handle: createHandler(role, config, workerLog, command.optsWithGlobals<{ config?: string }>().config ?? process.env.STAGEGATE_CONFIG),
        log: workerLog,
        concurrency: options.concurrency,
        ackWaitMs: config.jobs.ackWaitMs,
        maxDeliveries: config.jobs.maxDeliveries,
        redact: createSecretRedactor(secretValuesOf(config)),
        model: modelOfRole(role, config),
      });
      if (role === 'coder' || role === 'reviewer') {
        const sandbox = await describeSandbox(config);
        workerLog.info({ sandbox }, 'sandbox');
        console.error(`stagegate ${role} worker: ${sandbox}`);
      }
      console.error(`stagegate ${role} worker ready`);
      await untilSignal(async () => {
        await worker.stop();
        await nc.drain();
      });
    });
}
