import type { Command } from 'commander';
import { AgentRole } from '../../core/bus/messages.js';
import { createProcessGroup } from '../process-group.js';
import { configOf, untilSignal } from '../runtime.js';

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('run an orchestrator and one worker per agent role, as child processes, against NATS_URL')
    .option('--workers <n>', 'workers per role', (v) => Number.parseInt(v, 10), 1)
    .action(async (options: { workers: number }, command: Command) => {
      const config = configOf(command);
      const { config: file } = command.optsWithGlobals<{ config?: string }>();
      const env = { ...process.env, ...(file === undefined ? {} : { STAGEGATE_CONFIG: file }) };
      const group = createProcessGroup({ env });
      try {
        await group.start('orchestrator', ['orchestrator']);
        for (const role of AgentRole.options) {
          for (let i = 1; i <= options.workers; i++) await group.start(`${role}-${i}`, ['worker', role]);
        }
      } catch (err) {
        await group.stopAll();
        throw err;
      }
      console.error(`stagegate up against ${config.natsUrl}: ${group.children.map((c) => c.name).join(', ')} ready`);
      await untilSignal(() => group.stopAll());
    });
}
