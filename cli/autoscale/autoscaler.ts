/**
 * The autoscaler loop: every interval, for each role, reads the backlog of its consumer on
 * SG_JOBS (`worker-<role>`: jobs pending and in flight), decides with `decideReplicas` and starts
 * or stops workers of its pool; each change is logged with the counts it was made on. Without
 * pools (metrics only) it decides just the same, as if a cluster autoscaler followed each
 * decision, and only reports it.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AgentRole } from '../../core/bus/messages.js';
import { STREAMS, workerConsumer } from '../../core/bus/subjects.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { decideReplicas, startMemory, type RoleLoad, type ScaleMemory, type ScalePolicy, type ScaleReason } from './desired-replicas.js';
import type { WorkerPool } from './worker-pool.js';

export interface RoleStatus {
  role: AgentRole;
  pending: number;
  inFlight: number;
  desired: number;
  /** Local workers taking jobs; undefined when the autoscaler runs no workers itself. */
  running: number | undefined;
  stopping: number | undefined;
  reason: ScaleReason | 'starting';
}

export type LoadReader = (role: AgentRole) => Promise<RoleLoad>;

export interface AutoscalerOptions {
  roles: readonly AgentRole[];
  policy: ScalePolicy;
  intervalMs: number;
  readLoad: LoadReader;
  /** One per role; absent: decide and report only. */
  pools?: ReadonlyMap<AgentRole, WorkerPool>;
  log: Logger;
  now?: () => number;
}

export interface Autoscaler {
  status(): RoleStatus[];
  /** Stops deciding, then stops every worker it started (each finishing its jobs in hand). */
  stop(): Promise<void>;
}

/** Reads `num_pending` and `num_ack_pending` of each role's consumer. */
export async function consumerLoadReader(nc: NatsConnection): Promise<LoadReader> {
  const jsm = await jetstreamManager(nc);
  return async (role) => {
    const info = await jsm.consumers.info(STREAMS.jobs, workerConsumer(role));
    return { pending: info.num_pending, inFlight: info.num_ack_pending };
  };
}

/** Starts `min` workers per role (awaited), then decides every `intervalMs`. */
export async function startAutoscaler(options: AutoscalerOptions): Promise<Autoscaler> {
  const { policy, log, pools } = options;
  const now = options.now ?? (() => Date.now());
  const memory = new Map<AgentRole, ScaleMemory>();
  const statuses = new Map<AgentRole, RoleStatus>();

  await Promise.all(options.roles.map((role) => pools?.get(role)?.scaleTo(policy.min)));
  for (const role of options.roles) {
    memory.set(role, startMemory(now()));
    const pool = pools?.get(role);
    statuses.set(role, { role, pending: 0, inFlight: 0, desired: policy.min, running: pool?.running(), stopping: pool?.stopping(), reason: 'starting' });
  }

  async function evaluate(role: AgentRole): Promise<void> {
    const pool = pools?.get(role);
    const previous = statuses.get(role) as RoleStatus;
    let load: RoleLoad;
    try {
      load = await options.readLoad(role);
    } catch (err) {
      log.warn({ role, err: errorMessage(err) }, 'reading the job backlog failed; keeping the workers as they are');
      return;
    }
    const current = pool === undefined ? previous.desired : pool.running();
    const decision = decideReplicas({ load, current, policy, now: now(), memory: memory.get(role) as ScaleMemory });
    memory.set(role, decision.memory);
    const counts = { role, pending: load.pending, inFlight: load.inFlight, running: current, desired: decision.desired, reason: decision.reason };
    if (decision.desired !== current) {
      log.info({ ...counts, stopping: pool?.stopping() }, 'scaling workers');
      try {
        await pool?.scaleTo(decision.desired);
      } catch (err) {
        // Counted from what actually runs next time, so the next decision tries again.
        log.error({ role, err: errorMessage(err) }, 'starting workers failed');
      }
    } else {
      log.debug(counts, 'workers as needed');
    }
    statuses.set(role, { ...counts, running: pool?.running(), stopping: pool?.stopping() });
  }

  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let ticking: Promise<void> = Promise.resolve();
  const schedule = () => {
    timer = setTimeout(() => {
      ticking = Promise.all(options.roles.map((role) => evaluate(role))).then(() => {
        if (!stopped) schedule();
      });
    }, options.intervalMs);
  };
  schedule();

  return {
    status: () =>
      options.roles.map((role) => {
        const status = statuses.get(role) as RoleStatus;
        const pool = pools?.get(role);
        return pool === undefined ? status : { ...status, running: pool.running(), stopping: pool.stopping() };
      }),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await ticking;
      await Promise.all([...(pools?.values() ?? [])].map((pool) => pool.stopAll()));
    },
  };
}
