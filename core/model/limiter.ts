/**
 * Every model call of a process waits here for its turn, per (base URL, model): requests per
 * minute, tokens per minute and calls at once, from `model.limits`. Waiting calls form one FIFO
 * queue per key, so a surge queues instead of failing and a large request is never starved by
 * small ones. A 429 pauses the whole key for as long as the endpoint asked (`retry-after-ms`,
 * `Retry-After`; without either, 1 s doubling up to 30 s), and the call goes back to the head of
 * the queue, at most `rateLimitRetries` times. The time a call spent queued is returned with its
 * value, so it reaches the task's usage.
 *
 * Both rates are token buckets refilled continuously and holding one second's worth (at least
 * one request): a surge is spread evenly, as endpoints that enforce per-minute limits over
 * shorter periods expect. Tokens are charged before sending from an estimate (characters / 4 of
 * the request) and settled against the reply's usage afterwards; a request larger than the
 * bucket waits for a full bucket and leaves it in debt, so the average rate still holds.
 *
 * Limits are per process: N worker processes may send N times the rate. A 429 from the
 * endpoint is what keeps them honest together.
 */
import type { Logger } from '../log.js';

export interface ModelLimits {
  requestsPerMinute?: number | undefined;
  tokensPerMinute?: number | undefined;
  maxConcurrency?: number | undefined;
}

/** The clock the limiter waits on; `test/helpers/manual-clock.ts` fits it. */
export interface LimiterClock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/** What a rejected call says about rate limiting: undefined when it was not a 429. */
export type RateLimitCheck = (err: unknown) => { retryAfterMs: number | undefined } | undefined;

export interface LimitedCallRequest<T> {
  baseURL: string;
  model: string;
  /** Charged against tokens per minute before sending; see `estimateTokens`. */
  estimatedTokens: number;
  /** Sends the request; sent again after a 429. */
  send(): Promise<T>;
  /** Tokens the reply says it used (input plus output): the estimate is settled against it. */
  tokensUsed(value: T): number;
}

export interface LimitedCall<T> {
  value: T;
  /** Time spent waiting for a turn, pauses after 429s included; whole milliseconds. */
  queueWaitMs: number;
  /** 429s answered before this call went through. */
  rateLimited: number;
}

export interface LimiterKeyStats {
  key: string;
  queued: number;
  running: number;
  pausedForMs: number;
}

export interface ModelLimiter {
  run<T>(request: LimitedCallRequest<T>): Promise<LimitedCall<T>>;
  stats(): LimiterKeyStats[];
}

export interface ModelLimiterOptions {
  /** By model name; `*` for every other model. */
  limits: Readonly<Record<string, ModelLimits>>;
  /** Times a call is sent again after a 429. */
  rateLimitRetries: number;
  isRateLimited: RateLimitCheck;
  log: Logger;
  clock?: LimiterClock;
}

/** A Retry-After longer than this fails the call now: it is a quota, not a surge. */
export const MAX_PAUSE_MS = 120_000;
const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
/** Float slack when a bucket refilled for exactly the time computed. */
const EPSILON = 1e-6;

const systemClock: LimiterClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Characters / 4 of what is sent: the usual rough count for English text and JSON. */
export function estimateTokens(request: unknown): number {
  return Math.ceil(JSON.stringify(request).length / 4);
}

interface Bucket {
  /** Per millisecond. */
  rate: number;
  capacity: number;
  level: number;
}

interface Waiter {
  tokens: number;
  grant(): void;
}

interface KeyState {
  key: string;
  maxConcurrency: number;
  requests: Bucket | undefined;
  tokens: Bucket | undefined;
  queue: Waiter[];
  running: number;
  refilledAt: number;
  pausedUntil: number;
  timer: { handle: unknown; at: number } | undefined;
}

function bucketOf(perMinute: number | undefined, minCapacity: number): Bucket | undefined {
  if (perMinute === undefined) return undefined;
  const capacity = Math.max(minCapacity, perMinute / 60);
  return { rate: perMinute / 60_000, capacity, level: capacity };
}

export function createModelLimiter(options: ModelLimiterOptions): ModelLimiter {
  const clock = options.clock ?? systemClock;
  const keys = new Map<string, KeyState>();

  function stateOf(baseURL: string, model: string): KeyState {
    const key = `${baseURL} ${model}`;
    let state = keys.get(key);
    if (state === undefined) {
      const limits = options.limits[model] ?? options.limits['*'] ?? {};
      state = {
        key,
        maxConcurrency: limits.maxConcurrency ?? Number.POSITIVE_INFINITY,
        requests: bucketOf(limits.requestsPerMinute, 1),
        tokens: bucketOf(limits.tokensPerMinute, 1),
        queue: [],
        running: 0,
        refilledAt: clock.now(),
        pausedUntil: 0,
        timer: undefined,
      };
      keys.set(key, state);
    }
    return state;
  }

  function refill(state: KeyState, now: number) {
    const elapsed = now - state.refilledAt;
    state.refilledAt = now;
    for (const bucket of [state.requests, state.tokens]) {
      if (bucket !== undefined) bucket.level = Math.min(bucket.capacity, bucket.level + elapsed * bucket.rate);
    }
  }

  /** Milliseconds until `waiter` may go: 0 now, Infinity until a running call ends. */
  function delayFor(state: KeyState, waiter: Waiter, now: number): number {
    if (now < state.pausedUntil) return state.pausedUntil - now;
    if (state.running >= state.maxConcurrency) return Number.POSITIVE_INFINITY;
    let delay = 0;
    const need = (bucket: Bucket | undefined, amount: number) => {
      if (bucket === undefined) return;
      const missing = Math.min(amount, bucket.capacity) - bucket.level;
      if (missing > EPSILON) delay = Math.max(delay, missing / bucket.rate);
    };
    need(state.requests, 1);
    need(state.tokens, waiter.tokens);
    return delay;
  }

  /** Grants waiting calls in order while the key allows; otherwise arms one timer for the head. */
  function pump(state: KeyState) {
    const now = clock.now();
    refill(state, now);
    while (state.queue.length > 0) {
      const head = state.queue[0] as Waiter;
      const delay = delayFor(state, head, now);
      if (delay === Number.POSITIVE_INFINITY) return;
      if (delay > 0) {
        armTimer(state, now + Math.ceil(delay));
        return;
      }
      state.queue.shift();
      state.running += 1;
      if (state.requests !== undefined) state.requests.level -= 1;
      if (state.tokens !== undefined) state.tokens.level -= head.tokens;
      head.grant();
    }
  }

  function armTimer(state: KeyState, at: number) {
    if (state.timer !== undefined) {
      if (state.timer.at <= at) return;
      clock.clearTimer(state.timer.handle);
    }
    const handle = clock.setTimer(() => {
      state.timer = undefined;
      pump(state);
    }, at - clock.now());
    state.timer = { handle, at };
  }

  function acquire(state: KeyState, tokens: number, atHead: boolean): Promise<void> {
    return new Promise((grant) => {
      const waiter = { tokens, grant };
      if (atHead) state.queue.unshift(waiter);
      else state.queue.push(waiter);
      pump(state);
    });
  }

  function release(state: KeyState, settle?: { estimated: number; used: number }) {
    state.running -= 1;
    if (settle !== undefined && state.tokens !== undefined) {
      refill(state, clock.now());
      state.tokens.level = Math.min(state.tokens.capacity, state.tokens.level + settle.estimated - settle.used);
    }
    pump(state);
  }

  async function run<T>(request: LimitedCallRequest<T>): Promise<LimitedCall<T>> {
    const state = stateOf(request.baseURL, request.model);
    let waited = 0;
    for (let attempt = 0; ; attempt++) {
      const queuedAt = clock.now();
      await acquire(state, request.estimatedTokens, attempt > 0);
      waited += clock.now() - queuedAt;
      let value: T;
      try {
        value = await request.send();
      } catch (err) {
        const limited = options.isRateLimited(err);
        const pauseMs = limited?.retryAfterMs ?? Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** attempt);
        if (limited === undefined || attempt >= options.rateLimitRetries || pauseMs > MAX_PAUSE_MS) {
          release(state);
          throw err;
        }
        // Paused before the slot is freed, so no waiting call slips through in between.
        state.pausedUntil = Math.max(state.pausedUntil, clock.now() + pauseMs);
        release(state);
        options.log.warn(
          { key: state.key, retryAfterMs: limited.retryAfterMs ?? null, pauseMs, attempt: attempt + 1, queued: state.queue.length },
          'model endpoint answered 429; pausing its calls',
        );
        continue;
      }
      release(state, { estimated: request.estimatedTokens, used: request.tokensUsed(value) });
      return { value, queueWaitMs: Math.round(waited), rateLimited: attempt };
    }
  }

  return {
    run,
    stats: () =>
      [...keys.values()].map((s) => ({
        key: s.key,
        queued: s.queue.length,
        running: s.running,
        pausedForMs: Math.max(0, s.pausedUntil - clock.now()),
      })),
  };
}
