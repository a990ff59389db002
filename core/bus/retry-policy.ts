/** How often a message whose handling fails is delivered, and how far apart, before it is given up on. */
export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

/** Twelve deliveries over about six minutes: a NATS or disk hiccup passes, a message that can never be handled stops coming back. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 12, firstDelayMs: 1_000, maxDelayMs: 60_000 };

/** The wait before delivery `delivered + 1`: twice the last, from `firstDelayMs` up to `maxDelayMs`. */
export function redeliveryDelayMs(policy: RetryPolicy, delivered: number): number {
  return Math.min(policy.firstDelayMs * 2 ** (delivered - 1), policy.maxDelayMs);
}
