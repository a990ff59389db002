/** What model calls cost, from `model.pricing`: the coder's per-job limit and the daily spend caps both count with it. */
import type { Usage } from '../bus/messages.js';
import type { ModelPrice } from '../config.js';

/** Dollars spent on `usage`: cached input at its own price, the rest of the input at full price. */
export function costUsd(usage: Usage, price: ModelPrice): number {
  const uncached = Math.max(0, usage.inputTokens - usage.cachedTokens);
  return (uncached * price.inputPerMTok + usage.cachedTokens * price.cachedInputPerMTok + usage.outputTokens * price.outputPerMTok) / 1_000_000;
}
