/**
 * How many workers a role should have, decided from the role's job backlog. Pure: no clock, no
 * I/O; time and the memory of earlier decisions come in as arguments, so tables pin the policy.
 *
 * Up is fast: as soon as the jobs waiting and in flight need more workers than run, that many
 * start (up to `max`). Down is slow, so the count does not flap: only once `cooldownMs` has passed
 * since the last change, and then only to the most the role needed at any point during the last
 * `cooldownMs` (as Kubernetes' HPA stabilization window does), so a lull between two bursts does
 * not stop the workers the next burst needs.
 */

export interface ScalePolicy {
  min: number;
  max: number;
  /** Jobs one worker runs at once (its `--concurrency`). */
  jobsPerWorker: number;
  cooldownMs: number;
}

/** A role's consumer on SG_JOBS: jobs not yet delivered, and delivered but not yet acked. */
export interface RoleLoad {
  pending: number;
  inFlight: number;
}

export interface ScaleMemory {
  /** When the count last changed (or the autoscaler started). */
  lastChangeAt: number;
  /** Workers needed at each decision within the last cool-down, oldest first. */
  recent: ReadonlyArray<{ at: number; needed: number }>;
}

export type ScaleReason = 'steady' | 'backlog' | 'idle' | 'cooling down' | 'below min' | 'above max';

export interface ScaleDecision {
  desired: number;
  /** What the load alone asks for, within min and max. */
  needed: number;
  reason: ScaleReason;
  memory: ScaleMemory;
}

export function startMemory(now: number): ScaleMemory {
  return { lastChangeAt: now, recent: [] };
}

/** Workers for the jobs waiting and in flight, within min and max. */
export function neededWorkers(load: RoleLoad, policy: ScalePolicy): number {
  const jobs = Math.max(0, load.pending) + Math.max(0, load.inFlight);
  return clamp(Math.ceil(jobs / Math.max(1, policy.jobsPerWorker)), policy.min, policy.max);
}

export function decideReplicas(input: {
  load: RoleLoad;
  current: number;
  policy: ScalePolicy;
  now: number;
  memory: ScaleMemory;
}): ScaleDecision {
  const { load, current, policy, now, memory } = input;
  const needed = neededWorkers(load, policy);
  const recent = [...memory.recent.filter((s) => s.at > now - policy.cooldownMs), { at: now, needed }];
  const decide = (desired: number, reason: ScaleReason): ScaleDecision => ({
    desired,
    needed,
    reason,
    memory: { lastChangeAt: desired === current ? memory.lastChangeAt : now, recent },
  });

  if (current < policy.min) return decide(Math.max(policy.min, needed), 'below min');
  if (current > policy.max) return decide(policy.max, 'above max');
  if (needed > current) return decide(needed, 'backlog');
  if (needed === current) return decide(current, 'steady');
  if (now - memory.lastChangeAt < policy.cooldownMs) return decide(current, 'cooling down');
  const windowPeak = Math.max(...recent.map((s) => s.needed));
  return windowPeak < current ? decide(windowPeak, 'idle') : decide(current, 'cooling down');
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}
