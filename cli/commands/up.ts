import type { Command } from 'commander';
import { AgentRole } from '../../core/bus/messages.js';
import { connectBus } from '../../core/bus/connect.js';
import { createLogger } from '../../core/log.js';
import { startLocalAutoscaler, type LocalAutoscaler } from '../autoscale/local-autoscaler.js';
import { addAutoscaleOptions, parseAutoscaleSettings } from '../autoscale/options.js';
import { createProcessGroup } from '../process-group.js';
import { configOf, untilSignal } from '../runtime.js';

export function registerUp(program: Command): void {
  const command = program
    .command('up')
    .description('run an orchestrator and one worker per agent role (or, with --autoscale, as many as the backlog needs), as child processes, against NATS_URL')
    .option('--workers <n>', 'workers per role (without --autoscale)', (v) => Number.parseInt(v, 10), 1)
    .option('--autoscale', 'start and stop workers per role between --min and --max as the job backlog needs (see `stagegate autoscale`)');
  addAutoscaleOptions(command, false).action(async (options: { workers: number; autoscale?: boolean } & Record<string, unknown>, cmd: Command) => {
    const config = configOf(cmd);
    const settings = options.autoscale === true ? parseAutoscaleSettings(options) : undefined;
    const { config: file } = cmd.optsWithGlobals<{ config?: string }>();
    const env = { ...process.env, ...(file === undefined ? {} : { STAGEGATE_CONFIG: file }) };
    const group = createProcessGroup({ env });
    let scaler: LocalAutoscaler | undefined;
    let stopBus = async () => {};
    try {
      await group.start('orchestrator', ['orchestrator']);
      // Roles left out of --roles keep their fixed --workers.
      for (const role of AgentRole.options.filter((r) => settings?.roles.includes(r) !== true)) {
        for (let i = 1; i <= options.workers; i++) await group.start(`${role}-${i}`, ['worker', role]);
      }
      if (settings !== undefined) {
        // The orchestrator has made the streams and consumers by now; the autoscaler only reads them.
        const nc = await connectBus(config.natsUrl, 'stagegate-up-autoscale');
        stopBus = () => nc.drain();
        scaler = await startLocalAutoscaler({ settings, nc, group, log: createLogger({ level: config.logLevel, name: 'autoscale' }) });
      }
    } catch (err) {
      await scaler?.stop();
      await group.stopAll();
      await stopBus();
      throw err;
    }
    const running = group.children.map((c) => c.name).join(', ');
    console.error(`stagegate up against ${config.natsUrl}: ${running}${scaler === undefined ? '' : `; autoscaling ${scaler.describe()}`} ready`);
    await untilSignal(async () => {
      await scaler?.stop();
      await group.stopAll();
      await stopBus();
    });
  });
}
