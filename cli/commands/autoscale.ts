import type { Command } from 'commander';
import { startLocalAutoscaler, type LocalAutoscaler } from '../autoscale/local-autoscaler.js';
import { addAutoscaleOptions, parseAutoscaleSettings } from '../autoscale/options.js';
import { createProcessGroup } from '../process-group.js';
import { openRuntime, untilSignal } from '../runtime.js';

export function registerAutoscale(program: Command): void {
  const command = program
    .command('autoscale')
    .description('run between --min and --max local workers per role, following the job backlog, and serve the desired counts as metrics');
  addAutoscaleOptions(command).action(async (options: Record<string, unknown>, cmd: Command) => {
    const settings = parseAutoscaleSettings(options);
    const { config, nc, log } = await openRuntime(cmd, 'autoscale');
    const { config: file } = cmd.optsWithGlobals<{ config?: string }>();
    const group = createProcessGroup({ env: { ...process.env, ...(file === undefined ? {} : { STAGEGATE_CONFIG: file }) } });
    let scaler: LocalAutoscaler;
    try {
      scaler = await startLocalAutoscaler({ settings, nc, group, log });
    } catch (err) {
      await group.stopAll();
      await nc.drain();
      throw err;
    }
    console.error(`stagegate autoscale against ${config.natsUrl}: ${scaler.describe()}; ready`);
    await untilSignal(async () => {
      await scaler.stop();
      await group.stopAll();
      await nc.drain();
    });
  });
}
