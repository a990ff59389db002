import { describe, expect, it } from 'vitest';
import { decideReplicas, neededWorkers, startMemory, type RoleLoad, type ScaleMemory, type ScalePolicy } from '../../cli/autoscale/desired-replicas.js';
import { parseAutoscaleSettings, parseDuration } from '../../cli/autoscale/options.js';

const policy: ScalePolicy = { min: 1, max: 8, jobsPerWorker: 1, cooldownMs: 30_000 };
const T = 1_000_000;

describe('workers needed for a backlog', () => {
  it.each([
    ['nothing to do keeps min', { pending: 0, inFlight: 0 }, policy, 1],
    ['one worker per job waiting or in flight', { pending: 3, inFlight: 2 }, policy, 5],
    ['no more than max', { pending: 500, inFlight: 8 }, policy, 8],
    ['jobs per worker divides, rounding up', { pending: 5, inFlight: 2 }, { ...policy, jobsPerWorker: 2 }, 4],
    ['min 0 allows none', { pending: 0, inFlight: 0 }, { ...policy, min: 0 }, 0],
  ] as Array<[string, RoleLoad, ScalePolicy, number]>)('%s', (_name, load, p, expected) => {
    expect(neededWorkers(load, p)).toBe(expected);
  });
});

describe('desired replicas', () => {
  const quietSince = (at: number, needed: number): ScaleMemory => ({ lastChangeAt: at, recent: [{ at, needed }] });

  it.each([
    // name, load, current, memory, expected desired, reason
    ['scales up at once under a backlog', { pending: 6, inFlight: 1 }, 1, startMemory(T - 100), 7, 'backlog'],
    ['scales up right after a change: up never waits for the cool-down', { pending: 8, inFlight: 2 }, 4, startMemory(T - 100), 8, 'backlog'],
    ['keeps a count that matches the load', { pending: 1, inFlight: 3 }, 4, startMemory(T - 100), 4, 'steady'],
    ['keeps workers while jobs are in flight, none pending', { pending: 0, inFlight: 3 }, 3, startMemory(T - 60_000), 3, 'steady'],
    ['does not scale down within the cool-down of the last change', { pending: 0, inFlight: 0 }, 8, startMemory(T - 29_999), 8, 'cooling down'],
    ['scales down to min after a cool-down of idleness', { pending: 0, inFlight: 0 }, 8, quietSince(T - 31_000, 0), 1, 'idle'],
    ['scales down only to the peak of the last cool-down', { pending: 0, inFlight: 0 }, 8, { lastChangeAt: T - 60_000, recent: [{ at: T - 40_000, needed: 8 }, { at: T - 10_000, needed: 5 }, { at: T - 5_000, needed: 2 }] }, 5, 'idle'],
    ['keeps the count while the last cool-down still saw it needed', { pending: 0, inFlight: 0 }, 6, { lastChangeAt: T - 60_000, recent: [{ at: T - 1_000, needed: 6 }] }, 6, 'cooling down'],
    ['brings a count below min up to min', { pending: 0, inFlight: 0 }, 0, startMemory(T), 1, 'below min'],
    ['brings a count above max down to max at once', { pending: 50, inFlight: 0 }, 10, startMemory(T), 8, 'above max'],
    ['scales from zero when min is 0 and a job arrives', { pending: 1, inFlight: 0 }, 0, startMemory(T), 1, 'backlog'],
  ] as Array<[string, RoleLoad, number, ScaleMemory, number, string]>)('%s', (_name, load, current, memory, desired, reason) => {
    const p = current === 0 && reason === 'backlog' ? { ...policy, min: 0 } : policy;
    const decision = decideReplicas({ load, current, policy: p, now: T, memory });
    expect(decision.desired).toBe(desired);
    expect(decision.reason).toBe(reason);
  });

  it('remembers the change time only when the count changes', () => {
    const memory = startMemory(T - 100);
    expect(decideReplicas({ load: { pending: 4, inFlight: 0 }, current: 1, policy, now: T, memory }).memory.lastChangeAt).toBe(T);
    expect(decideReplicas({ load: { pending: 1, inFlight: 0 }, current: 1, policy, now: T, memory }).memory.lastChangeAt).toBe(T - 100);
  });

  it('forgets what it needed longer than a cool-down ago', () => {
    const memory: ScaleMemory = { lastChangeAt: T - 90_000, recent: [{ at: T - 31_000, needed: 8 }, { at: T - 2_000, needed: 1 }] };
    const decision = decideReplicas({ load: { pending: 0, inFlight: 0 }, current: 8, policy, now: T, memory });
    expect(decision.memory.recent).toEqual([{ at: T - 2_000, needed: 1 }, { at: T, needed: 1 }]);
    expect(decision.desired).toBe(1);
  });

  it('does not flap when bursts alternate with lulls shorter than the cool-down', () => {
    let memory = startMemory(0);
    let current = 1;
    const counts: number[] = [];
    for (let tick = 0; tick < 60; tick++) {
      const load = tick % 4 < 2 ? { pending: 10, inFlight: 0 } : { pending: 0, inFlight: 0 };
      const decision = decideReplicas({ load, current, policy, now: tick * 2_000, memory });
      memory = decision.memory;
      current = decision.desired;
      counts.push(current);
    }
    expect(counts[0]).toBe(8);
    expect(new Set(counts)).toEqual(new Set([8]));
  });

  it('scales back to min one cool-down after the last burst', () => {
    let memory = startMemory(0);
    let current = 1;
    const at: Array<{ now: number; desired: number }> = [];
    for (let now = 0; now <= 60_000; now += 2_000) {
      const load = now <= 10_000 ? { pending: 20, inFlight: 0 } : { pending: 0, inFlight: 0 };
      const decision = decideReplicas({ load, current, policy, now, memory });
      memory = decision.memory;
      current = decision.desired;
      at.push({ now, desired: current });
    }
    const firstAtMin = at.find((x) => x.now > 10_000 && x.desired === 1);
    // The last burst was seen at 10 s: a full cool-down later, at 40 s, nothing in the window needs more.
    expect(firstAtMin?.now).toBe(40_000);
    expect(at.filter((x) => x.now > 0 && x.now < 40_000).every((x) => x.desired === 8)).toBe(true);
  });
});

describe('autoscale options', () => {
  const defaults = {
    roles: 'planner,coder,reviewer,deployer',
    min: '1',
    max: '8',
    cooldown: '30s',
    interval: '2s',
    jobsPerWorker: '1',
    metrics: true,
    metricsPort: '9464',
    metricsHost: '127.0.0.1',
  };

  it('parses the defaults and durations', () => {
    expect(parseAutoscaleSettings(defaults)).toMatchObject({ roles: ['planner', 'coder', 'reviewer', 'deployer'], min: 1, max: 8, cooldown: 30_000, interval: 2_000, metricsPort: 9464, metricsOnly: false });
    expect([parseDuration('500ms'), parseDuration('1.5s'), parseDuration('2m'), parseDuration('30')]).toEqual([500, 1_500, 120_000, undefined]);
  });

  it.each([
    [{ roles: 'planner,tester' }, /--roles expected roles from planner, coder, reviewer, deployer; got 'planner,tester'/],
    [{ cooldown: '30' }, /--cooldown expected a duration such as 500ms, 30s or 2m; got '30'/],
    [{ min: '4', max: '2' }, /--max expected at least --min/],
    [{ jobsPerWorker: '0' }, /--jobs-per-worker expected 1 or more/],
  ])('refuses %o naming the option', (override, message) => {
    expect(() => parseAutoscaleSettings({ ...defaults, ...override })).toThrow(message);
  });
});
