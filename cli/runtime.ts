/** What every long-running or bus-using command needs: config, a logger, a NATS connection. */
import type { Command } from 'commander';
import { connectBus, type NatsConnection } from '../core/bus/connect.js';
import { ensureTopology } from '../core/bus/topology.js';
import { loadConfig, type Config } from '../core/config.js';
import { createLogger, type Logger } from '../core/log.js';

export function configOf(command: Command): Readonly<Config> {
  const { config } = command.optsWithGlobals<{ config?: string }>();
  return loadConfig({ env: process.env, ...(config === undefined ? {} : { file: config }) });
}

export interface Runtime {
  config: Readonly<Config>;
  log: Logger;
  nc: NatsConnection;
}

/** `serving` processes (orchestrator, workers) bring the shared consumers to their settings. */
export async function openRuntime(command: Command, name: string, serving = false): Promise<Runtime> {
  const config = configOf(command);
  const log = createLogger({ level: config.logLevel, name });
  const nc = await connectBus(config.natsUrl, `stagegate-${name}`);
  await ensureTopology(nc, { jobAckWaitMs: config.jobs.ackWaitMs, jobMaxDeliveries: config.jobs.maxDeliveries, updateExisting: serving });
  return { config, log, nc };
}

/** Runs until SIGINT or SIGTERM, then stops what was started, in order. */
export function untilSignal(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      void stop().finally(resolve);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
