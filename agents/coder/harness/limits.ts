/**
 * The limits on one coder job: turns, tokens, cost and wall-clock time. Checked before every
 * model call; the first one reached ends the loop with its reason, worded for the task's log.
 * Pure apart from the injected clock, so tests drive time by hand.
 */
import type { CoderCaps, Usage } from '../../../core/bus/messages.js';
import type { ModelPrice } from '../../../core/config.js';
import { costUsd } from '../../../core/model/cost.js';

export interface Limits {
  maxTurns: number;
  /** Input plus output tokens; undefined: no limit. */
  maxTokens?: number | undefined;
  /** Needs the model's price; undefined: no limit. */
  maxCostUsd?: number | undefined;
  wallClockMs: number;
}

export interface LimitCheck {
  /** The reason the loop must stop now, or undefined to go on. */
  reached(state: { turns: number; usage: Usage }): string | undefined;
  /** Milliseconds since the job's loop started, by the injected clock. */
  elapsedMs(): number;
}

/** The worker's limits, lowered where the task caps them: a task's cap never raises one. */
export function capLimits(limits: Limits, caps: CoderCaps | undefined): Limits {
  const lower = (mine: number | undefined, cap: number | undefined) => (cap === undefined ? mine : mine === undefined ? cap : Math.min(mine, cap));
  return {
    maxTurns: Math.min(limits.maxTurns, caps?.maxTurns ?? limits.maxTurns),
    maxTokens: lower(limits.maxTokens, caps?.maxTokens),
    maxCostUsd: lower(limits.maxCostUsd, caps?.maxCostUsd),
    wallClockMs: Math.min(limits.wallClockMs, caps?.wallClockMs ?? limits.wallClockMs),
  };
}

export function createLimitCheck(limits: Limits, price: ModelPrice | undefined, clock: () => number): LimitCheck {
  const startedAt = clock();
  const elapsedMs = () => clock() - startedAt;
  return {
    elapsedMs,
    reached({ turns, usage }) {
      if (turns >= limits.maxTurns) return `the turn limit (${limits.maxTurns} turns)`;
      const tokens = usage.inputTokens + usage.outputTokens;
      if (limits.maxTokens !== undefined && tokens >= limits.maxTokens) {
        return `the token limit (${limits.maxTokens} tokens; ${tokens} used)`;
      }
      if (limits.maxCostUsd !== undefined && price !== undefined) {
        const spent = costUsd(usage, price);
        if (spent >= limits.maxCostUsd) return `the cost limit ($${limits.maxCostUsd.toFixed(2)}; $${spent.toFixed(2)} spent)`;
      }
      const elapsed = elapsedMs();
      if (elapsed >= limits.wallClockMs) return `the wall-clock limit (${formatMs(limits.wallClockMs)}; ${formatMs(elapsed)} elapsed)`;
      return undefined;
    },
  };
}

function formatMs(ms: number): string {
  return ms < 60_000 ? `${Math.round(ms / 100) / 10} s` : `${Math.round(ms / 6_000) / 10} min`;
}
