/**
 * Wiring for `stagegate autoscale` and `stagegate up --autoscale`: a pool of local worker
 * processes per role (unless metrics only), the autoscaler reading the consumers, the metrics
 * endpoint. Stopping stops the loop, then the workers (each finishing its jobs), then the endpoint.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { AgentRole } from '../../core/bus/messages.js';
import type { Logger } from '../../core/log.js';
import type { ProcessGroup } from '../process-group.js';
import { consumerLoadReader, startAutoscaler, type Autoscaler } from './autoscaler.js';
import { startMetricsServer, type MetricsServer } from './metrics.js';
import type { AutoscaleSettings } from './options.js';
import { createWorkerPool, processLauncher, type WorkerPool } from './worker-pool.js';

export interface LocalAutoscaler {
  autoscaler: Autoscaler;
  metrics: MetricsServer | undefined;
  /** One line for the ready message: roles, bounds, where the metrics are. */
  describe(): string;
  stop(): Promise<void>;
}

export async function startLocalAutoscaler(input: {
  settings: AutoscaleSettings;
  nc: NatsConnection;
  group: ProcessGroup;
  log: Logger;
}): Promise<LocalAutoscaler> {
  const { settings, group } = input;
  const log = input.log.child({ component: 'autoscaler' });
  const pools = settings.metricsOnly
    ? undefined
    : new Map<AgentRole, WorkerPool>(
        settings.roles.map((role) => [role, createWorkerPool(role, processLauncher(group, role, settings.jobsPerWorker), log)]),
      );
  const autoscaler = await startAutoscaler({
    roles: settings.roles,
    policy: { min: settings.min, max: settings.max, jobsPerWorker: settings.jobsPerWorker, cooldownMs: settings.cooldown },
    intervalMs: settings.interval,
    readLoad: await consumerLoadReader(input.nc),
    log,
    ...(pools === undefined ? {} : { pools }),
  });
  let metrics: MetricsServer | undefined;
  try {
    metrics = settings.metrics ? await startMetricsServer({ host: settings.metricsHost, port: settings.metricsPort, status: () => autoscaler.status() }) : undefined;
  } catch (err) {
    await autoscaler.stop();
    throw err;
  }
  return {
    autoscaler,
    metrics,
    describe: () =>
      [
        `${settings.roles.join(', ')} between ${settings.min} and ${settings.max} workers${settings.metricsOnly ? ' (metrics only: no local workers)' : ''}`,
        `cool-down ${settings.cooldown / 1000} s`,
        metrics === undefined ? 'no metrics' : `metrics at ${metrics.url}`,
      ].join('; '),
    async stop() {
      await autoscaler.stop();
      await metrics?.close();
    },
  };
}
