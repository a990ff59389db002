import type { Clock } from '../../orchestrator/timers/clock.js';

export interface ManualClock extends Clock {
  /** Moves time forward and runs every timer that fell due, in order. */
  advance(ms: number): void;
  /** Timers waiting to run. */
  pending(): number;
}

/**
 * A clock that moves only when told. A timer due now or earlier runs on the next turn of the
 * event loop, as a real zero-delay timer would.
 */
export function manualClock(start: number): ManualClock {
  let now = start;
  let nextId = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const runDue = () => {
    const due = [...timers.entries()].filter(([, t]) => t.at <= now).sort((a, b) => a[1].at - b[1].at || a[0] - b[0]);
    for (const [id, t] of due) {
      timers.delete(id);
      setImmediate(t.fn);
    }
  };
  return {
    now: () => now,
    setTimer(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: now + Math.max(ms, 0), fn });
      if (ms <= 0) runDue();
      return id;
    },
    clearTimer(handle) {
      if (typeof handle === 'number') timers.delete(handle);
    },
    advance(ms) {
      now += ms;
      runDue();
    },
    pending: () => timers.size,
  };
}
