import type { Command } from 'commander';
import { createSecretRedactor, secretValuesOf } from '../../core/security/redact-secrets.js';
import { startOrchestrator } from '../../orchestrator/orchestrator.js';
import { openRuntime, untilSignal } from '../runtime.js';

export function registerOrchestrator(program: Command): void {
  program
    .command('orchestrator')
    .description('run an orchestrator: applies results and decisions to tasks and dispatches jobs (run as many as you like)')
    .option('--concurrency <n>', 'messages handled at once', (v) => Number.parseInt(v, 10), 32)
    .action(async (options: { concurrency: number }, command: Command) => {
      const { nc, log, config } = await openRuntime(command, 'orchestrator', true);
      const orchestrator = await startOrchestrator({ nc, log, concurrency: options.concurrency, redact: createSecretRedactor(secretValuesOf(config)), pricing: config.model.pricing });
      console.error('stagegate orchestrator ready');
      await untilSignal(async () => {
        await orchestrator.stop();
        await nc.drain();
      });
    });
}
