/**
 * The model limiter: rates and concurrency on a hand-moved clock (no sleeps), then the 429 path
 * end to end through the real clients against the scripted model server's Retry-After.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { formatTokens, formatTurnUsage } from '../../cli/format.js';
import { loadConfig, ModelConfig } from '../../core/config.js';
import { isStagegateError, type StagegateError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { createModelClient } from '../../core/model/client.js';
import { createModelLimiter, type ModelLimits, type RateLimitCheck } from '../../core/model/limiter.js';
import { createProcessModelLimiter, parseRetryAfter } from '../../core/model/openai-client.js';
import { createTurnClient } from '../../core/model/turn.js';
import { startScriptedModelServer, type Script, type ScriptedModelServer } from '../../core/scripted-model/index.js';
import { addUsage, emptyUsage } from '../../core/task-record.js';
import { manualClock, type ManualClock } from '../helpers/manual-clock.js';
import { waitFor } from '../helpers/wait-for.js';

const silent = createLogger({ level: 'silent' });
const URL_A = 'http://model.test/v1';

class FakeRateLimit extends Error {
  constructor(readonly retryAfterMs: number | undefined) {
    super('429 slow down');
  }
}
const fakeRateLimit: RateLimitCheck = (err) => (err instanceof FakeRateLimit ? { retryAfterMs: err.retryAfterMs } : undefined);

function limiterOn(clock: ManualClock, limits: Record<string, ModelLimits>, rateLimitRetries = 3) {
  return createModelLimiter({ limits, rateLimitRetries, isRateLimited: fakeRateLimit, log: silent, clock });
}

/** Lets granted calls run: timers fire on setImmediate, then their promise chains settle. */
async function settle(turns = 5) {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Moves the clock in steps, letting due calls start at each one. */
async function advance(clock: ManualClock, ms: number, step = 100) {
  for (let moved = 0; moved < ms; moved += step) {
    clock.advance(Math.min(step, ms - moved));
    await settle();
  }
}

describe('model limiter, on a manual clock', () => {
  it('spreads a burst to the requests-per-minute rate, in arrival order, reporting each wait', async () => {
    const clock = manualClock(0);
    const limiter = limiterOn(clock, { '*': { requestsPerMinute: 60 } });
    const started: Array<{ i: number; at: number }> = [];

    const calls = Array.from({ length: 10 }, (_, i) =>
      limiter.run({ baseURL: URL_A, model: 'm', estimatedTokens: 10, send: async () => started.push({ i, at: clock.now() }), tokensUsed: () => 10 }),
    );
    await settle();
    expect(started).toHaveLength(1);
    await advance(clock, 9_000);

    const results = await Promise.all(calls);
    expect(started.map((s) => s.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(started.map((s) => s.at)).toEqual([0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]);
    expect(results.map((r) => r.queueWaitMs)).toEqual([0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]);
  });

  it('never runs more calls at once than maxConcurrency, and starts the next as one ends', async () => {
    const clock = manualClock(0);
    const limiter = limiterOn(clock, { m: { maxConcurrency: 2 } });
    let running = 0;
    let peak = 0;
    const finish: Array<() => void> = [];
    const calls = Array.from({ length: 5 }, () =>
      limiter.run({
        baseURL: URL_A,
        model: 'm',
        estimatedTokens: 1,
        send: () =>
          new Promise<void>((resolve) => {
            running += 1;
            peak = Math.max(peak, running);
            finish.push(() => {
              running -= 1;
              resolve();
            });
          }),
        tokensUsed: () => 1,
      }),
    );
    await settle();
    expect(running).toBe(2);
    expect(limiter.stats()).toEqual([{ key: `${URL_A} m`, queued: 3, running: 2, pausedForMs: 0 }]);

    for (let i = 0; i < 5; i++) {
      finish.shift()?.();
      await settle();
    }
    await Promise.all(calls);
    expect(peak).toBe(2);
    expect(limiter.stats()[0]).toMatchObject({ queued: 0, running: 0 });
  });

  it('keeps to tokens per minute, settling each estimate against the tokens used', async () => {
    const clock = manualClock(0);
    // 6000 per minute: 100 a second, a bucket of 100.
    const limiter = limiterOn(clock, { '*': { tokensPerMinute: 6_000 } });
    const started: number[] = [];
    const call = (estimate: number, used: number) =>
      limiter.run({ baseURL: URL_A, model: 'm', estimatedTokens: estimate, send: async () => started.push(clock.now()), tokensUsed: () => used });

    // Each estimated at 100 (a full bucket): one a second...
    const first = [call(100, 100), call(100, 100), call(100, 100)];
    await settle();
    await advance(clock, 2_000);
    await Promise.all(first);
    expect(started).toEqual([0, 1000, 2000]);

    // ...but one that used only 50 gives back the other 50 at once.
    await advance(clock, 1_000);
    await call(100, 50);
    const next = call(100, 100);
    await advance(clock, 500);
    await next;
    expect(started.slice(3)).toEqual([3000, 3500]);
  });

  it('lets a request larger than the bucket through when the bucket is full, then makes the next wait off the debt', async () => {
    const clock = manualClock(0);
    const limiter = limiterOn(clock, { '*': { tokensPerMinute: 6_000 } });
    const started: number[] = [];
    const call = (estimate: number) =>
      limiter.run({ baseURL: URL_A, model: 'm', estimatedTokens: estimate, send: async () => started.push(clock.now()), tokensUsed: () => estimate });

    const big = call(500);
    const small = call(100);
    await settle();
    await advance(clock, 5_000);
    await Promise.all([big, small]);
    // 500 leaves the bucket at -400; 100 more takes 5 s to refill at 100 a second.
    expect(started).toEqual([0, 5000]);
  });

  it('keeps keys apart: another model or endpoint does not wait for this one', async () => {
    const clock = manualClock(0);
    const limiter = limiterOn(clock, { slow: { requestsPerMinute: 1 } });
    const send = async () => clock.now();
    const run = (baseURL: string, model: string) => limiter.run({ baseURL, model, estimatedTokens: 1, send, tokensUsed: () => 1 });

    await run(URL_A, 'slow');
    const waiting = run(URL_A, 'slow');
    const [otherModel, otherEndpoint] = await Promise.all([run(URL_A, 'fast'), run('http://other.test/v1', 'slow')]);

    expect(otherModel.queueWaitMs).toBe(0);
    expect(otherEndpoint.queueWaitMs).toBe(0);
    await advance(clock, 60_000, 10_000);
    expect((await waiting).queueWaitMs).toBe(60_000);
  });

  it('pauses every call to the key for the Retry-After of a 429 and sends the refused call first', async () => {
    const clock = manualClock(0);
    const limiter = limiterOn(clock, {});
    const sent: Array<{ name: string; at: number }> = [];
    let refuse = true;
    const first = limiter.run({
      baseURL: URL_A,
      model: 'm',
      estimatedTokens: 1,
      send: async () => {
        sent.push({ name: 'first', at: clock.now() });
        if (refuse) {
          refuse = false;
          throw new FakeRateLimit(2_000);
        }
        return 'ok';
      },
      tokensUsed: () => 1,
    });
    await settle();
    const second = limiter.run({ baseURL: URL_A, model: 'm', estimatedTokens: 1, send: async () => sent.push({ name: 'second', at: clock.now() }), tokensUsed: () => 1 });
    await settle();
    expect(sent).toEqual([{ name: 'first', at: 0 }]);
    expect(limiter.stats()[0]?.pausedForMs).toBe(2_000);

    await advance(clock, 2_000);
    const [a, b] = await Promise.all([first, second]);
    expect(sent).toEqual([
      { name: 'first', at: 0 },
      { name: 'first', at: 2000 },
      { name: 'second', at: 2000 },
    ]);
    expect(a).toMatchObject({ value: 'ok', queueWaitMs: 2000, rateLimited: 1 });
    expect(b.queueWaitMs).toBe(2000);
  });

  it('backs off 1 s, 2 s, ... without a Retry-After, and gives up after rateLimitRetries', async () => {
    const clock = manualClock(0);
    const limiter = limiterOn(clock, {}, 2);
    const sent: number[] = [];
    const outcome = limiter
      .run({
        baseURL: URL_A,
        model: 'm',
        estimatedTokens: 1,
        send: async () => {
          sent.push(clock.now());
          throw new FakeRateLimit(undefined);
        },
        tokensUsed: () => 1,
      })
      .catch((err: unknown) => err);
    await settle();
    await advance(clock, 3_000);

    expect(await outcome).toBeInstanceOf(FakeRateLimit);
    expect(sent).toEqual([0, 1000, 3000]);
  });

  it('passes other errors through at once and frees the slot', async () => {
    const clock = manualClock(0);
    const limiter = limiterOn(clock, { '*': { maxConcurrency: 1 } });
    const failed = limiter.run({ baseURL: URL_A, model: 'm', estimatedTokens: 1, send: () => Promise.reject(new Error('boom')), tokensUsed: () => 0 });
    await expect(failed).rejects.toThrow('boom');
    await expect(limiter.run({ baseURL: URL_A, model: 'm', estimatedTokens: 1, send: async () => 'next', tokensUsed: () => 1 })).resolves.toMatchObject({ value: 'next' });
  });
});

describe('Retry-After', () => {
  it.each([
    ['retry-after-ms wins', { 'retry-after-ms': '250', 'retry-after': '9' }, 250],
    ['seconds, fractions allowed', { 'retry-after': '1.5' }, 1500],
    ['an HTTP date, from now', { 'retry-after': new Date(10_000 + 3_000).toUTCString() }, 3000],
    ['unreadable', { 'retry-after': 'soon' }, undefined],
    ['absent', {}, undefined],
  ])('%s', (_name, headers, expected) => {
    expect(parseRetryAfter(new Headers(headers), 10_000)).toBe(expected);
  });
});

describe('model limits in config', () => {
  it('reads the default limits from STAGEGATE_MODEL_RPM, _TPM and _CONCURRENCY', () => {
    const config = loadConfig({
      env: { STAGEGATE_MODEL_RPM: '500', STAGEGATE_MODEL_TPM: '200000', STAGEGATE_MODEL_CONCURRENCY: '4', STAGEGATE_MODEL_RATE_LIMIT_RETRIES: '2' },
    });
    expect(config.model.limits).toEqual({ '*': { requestsPerMinute: 500, tokensPerMinute: 200_000, maxConcurrency: 4 } });
    expect(config.model.rateLimitRetries).toBe(2);
  });

  it('names the env variable of a bad limit', () => {
    expect(() => loadConfig({ env: { STAGEGATE_MODEL_CONCURRENCY: '0' } })).toThrow(/STAGEGATE_MODEL_CONCURRENCY expected a number above 0/);
  });
});

describe('queue wait in usage', () => {
  it('sums like the token counts and stays absent when nothing was measured', () => {
    const a = { ...emptyUsage(), calls: 1, queueWaitMs: 300 };
    expect(addUsage(a, { ...emptyUsage(), calls: 1, queueWaitMs: 200 })).toMatchObject({ calls: 2, queueWaitMs: 500 });
    expect(addUsage(a, emptyUsage())).toMatchObject({ queueWaitMs: 300 });
    expect(addUsage(emptyUsage(), emptyUsage())).not.toHaveProperty('queueWaitMs');
  });

  it('is shown by status and logs when a call waited', () => {
    const usage = { calls: 3, inputTokens: 12_100, cachedTokens: 9_800, outputTokens: 640, reasoningTokens: 0, queueWaitMs: 4_200 };
    expect(formatTokens(usage)).toBe('3 model calls, 12k in (9.8k cached), 640 out, 4.2 s queued for the model');
    expect(formatTurnUsage({ ...usage, calls: 1 })).toBe('12k in, 81% cached, 640 out, queued 4.2 s');
    expect(formatTokens({ ...usage, queueWaitMs: undefined })).toBe('3 model calls, 12k in (9.8k cached), 640 out');
  });
});

describe('model clients through the limiter, against the scripted model server', () => {
  const Verdict = z.object({ decision: z.enum(['approve', 'request_changes']) });
  let server: ScriptedModelServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function setup(script: Script, config: Partial<ModelConfig>) {
    server = await startScriptedModelServer({ script });
    const modelConfig = ModelConfig.parse({ apiKey: 'sk-test', baseUrl: server.url, model: 'test-model', ...config });
    return { model: server, modelConfig };
  }

  const ask = (taskId: string) => ({ taskId, role: 'reviewer' as const, instructions: 'Review.', input: 'Commit abc.', schema: Verdict, schemaName: 'verdict' });
  const approve = { json: { decision: 'approve' } };

  it('waits out a 429 Retry-After, holding back the next call too, then succeeds with the wait in usage', async () => {
    const { model, modelConfig } = await setup(
      { answers: { reviewer: [{ error: { status: 429, message: 'Rate limit reached', retryAfterSeconds: 0.4 } }, approve, approve] } },
      { maxRetries: 2, limits: { '*': { maxConcurrency: 1 } } },
    );
    const client = createModelClient(modelConfig, silent);

    const [first, second] = await Promise.all([client.generateStructured(ask('t-1')), client.generateStructured(ask('t-2'))]);

    expect(first.value).toEqual({ decision: 'approve' });
    expect(model.requests.map((r) => r.taskId)).toEqual(['t-1', 't-1', 't-2']);
    const at = model.requests.map((r) => Date.parse(r.receivedAt));
    expect((at[1] as number) - (at[0] as number)).toBeGreaterThanOrEqual(390);
    expect(first.usage.calls).toBe(1);
    expect(first.usage.queueWaitMs).toBeGreaterThanOrEqual(390);
    expect(second.usage.queueWaitMs).toBeGreaterThanOrEqual(390);
  });

  it('leaves 429s to the limiter: with no limiter retries left the SDK does not retry either', async () => {
    const { model, modelConfig } = await setup(
      { answers: { reviewer: [{ error: { status: 429, message: 'Rate limit reached', retryAfterSeconds: 0.01 } }, approve] } },
      { maxRetries: 3, rateLimitRetries: 0 },
    );

    const err = await createModelClient(modelConfig, silent).generateStructured(ask('t-1')).catch((e: unknown) => e);

    expect(isStagegateError(err, 'MODEL_HTTP')).toBe(true);
    expect((err as StagegateError).message).toContain('answered 429 Rate limit reached');
    expect((err as StagegateError).details?.status).toBe(429);
    expect(model.requests).toHaveLength(1);
  });

  it('gives up after rateLimitRetries 429s', async () => {
    const limited = { error: { status: 429, message: 'Rate limit reached', retryAfterSeconds: 0.01 } };
    const { model, modelConfig } = await setup({ answers: { reviewer: [limited, limited, limited, approve] } }, { maxRetries: 0, rateLimitRetries: 2 });

    const err = await createModelClient(modelConfig, silent).generateStructured(ask('t-1')).catch((e: unknown) => e);

    expect(isStagegateError(err, 'MODEL_HTTP')).toBe(true);
    expect(model.requests).toHaveLength(3);
  });

  it('shares one limiter between the structured client and the turn client, and reports a turn’s queue wait', async () => {
    const { model, modelConfig } = await setup(
      { answers: { reviewer: [{ ...approve, delayMs: 300 }], coder: [{ text: 'done' }] } },
      { maxRetries: 0, limits: { 'test-model': { maxConcurrency: 1 } } },
    );
    const limiter = createProcessModelLimiter(modelConfig, silent);
    const structured = createModelClient(modelConfig, silent, limiter);
    const turns = createTurnClient(modelConfig, 'coder', silent, limiter);

    const review = structured.generateStructured(ask('t-1'));
    await waitFor('the review request at the model', async () => (model.requests.length === 1 ? true : undefined));
    const turn = await turns.runTurn({ taskId: 't-2', instructions: 'Code.', tools: [], input: [{ type: 'message', role: 'user', content: 'Go.' }] });
    await review;

    expect(model.requests.map((r) => r.role)).toEqual(['reviewer', 'coder']);
    expect(turn.usage.calls).toBe(1);
    expect(turn.usage.queueWaitMs).toBeGreaterThanOrEqual(200);
  });
});
