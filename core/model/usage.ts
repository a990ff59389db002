/**
 * Token accounting for model calls: the Responses API `usage` block of each reply, summed into
 * the bus `Usage` shape. Endpoints that omit a detail (some compatible servers do) count as 0
 * for it; a call always counts, so `calls` says how many requests were paid for.
 */
import { z } from 'zod';
import type { Usage } from '../bus/messages.js';
import { parseAt } from '../parse.js';

const tokens = z.number().int().nonnegative().default(0);

/** The `usage` block of a Responses API reply, as far as Stagegate reads it. */
export const ResponseUsage = z.object({
  input_tokens: tokens,
  input_tokens_details: z.object({ cached_tokens: tokens }).nullish(),
  output_tokens: tokens,
  output_tokens_details: z.object({ reasoning_tokens: tokens }).nullish(),
});
export type ResponseUsage = z.infer<typeof ResponseUsage>;

/** `total` plus one call that reported `reply` (raw, as the endpoint sent it; may be absent). */
export function addCallUsage(total: Usage, reply: unknown, source: string): Usage {
  const usage = reply === undefined || reply === null ? undefined : parseAt(ResponseUsage, reply, source);
  return {
    calls: total.calls + 1,
    inputTokens: total.inputTokens + (usage?.input_tokens ?? 0),
    cachedTokens: total.cachedTokens + (usage?.input_tokens_details?.cached_tokens ?? 0),
    outputTokens: total.outputTokens + (usage?.output_tokens ?? 0),
    reasoningTokens: total.reasoningTokens + (usage?.output_tokens_details?.reasoning_tokens ?? 0),
  };
}

/** `total` plus time spent in the limiter's queue; a call that did not wait adds nothing. */
export function addQueueWait(total: Usage, queueWaitMs: number): Usage {
  return queueWaitMs <= 0 ? total : { ...total, queueWaitMs: (total.queueWaitMs ?? 0) + Math.round(queueWaitMs) };
}
