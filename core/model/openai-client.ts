/**
 * The one place an `OpenAI` SDK client is built and its errors are worded, shared by the
 * structured-output client (client.ts) and the agent loop's turn client (turn.ts): the key and
 * base URL come from config, retries on 5xx/408/409 and dropped connections are the SDK's own,
 * 429s are the limiter's (limiter.ts: it pauses every call to the endpoint, not just the one
 * that was refused), and a failure becomes MODEL_HTTP naming the endpoint, never echoing the key.
 * No request body carries a configured secret (`redact-secrets.ts`): a worker that asks a model
 * holds no credential but the model key (`configForRole`), and that one is kept out of what it sends.
 */
import OpenAI, { type APIConnectionError } from 'openai';
import type { AgentRole, Usage } from '../bus/messages.js';
import type { ModelConfig } from '../config.js';
import { StagegateError } from '../errors.js';
import type { Logger } from '../log.js';
import { createSecretRedactor, secretValuesOf, type RedactSecrets } from '../security/redact-secrets.js';
import { createModelLimiter, type ModelLimiter, type RateLimitCheck } from './limiter.js';

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

export interface OpenAIEndpoint {
  openai: OpenAI;
  baseURL: string;
  /** Takes the configured secrets (the key) out of what is sent, and out of error messages. */
  redact: RedactSecrets;
  timeoutMs: number;
}

export function createOpenAIEndpoint(config: ModelConfig, log: Logger): OpenAIEndpoint {
  if (config.apiKey === undefined) {
    throw new StagegateError(
      'CONFIG_INVALID',
      'OPENAI_API_KEY is not set: the model client needs an API key (any value works with `stagegate model-server`)',
    );
  }
  const baseURL = config.baseUrl ?? DEFAULT_BASE_URL;
  const redact = createSecretRedactor(secretValuesOf({ model: config }));
  const openai = new OpenAI({
    apiKey: config.apiKey,
    baseURL,
    maxRetries: config.maxRetries,
    timeout: config.timeoutMs,
    fetch: redactedFetch(redact),
    logger: log.child({ component: 'openai' }),
    logLevel: 'warn',
  });
  return { openai, baseURL, redact, timeoutMs: config.timeoutMs };
}

/** The SDK's requests, their JSON bodies redacted, each 429 left to the limiter. */
function redactedFetch(redact: RedactSecrets) {
  return (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    leaveRateLimitsToLimiter(input, typeof init?.body === 'string' ? { ...init, body: redact(init.body) } : init);
}

/**
 * The SDK would retry a 429 itself, and then the limiter again: the two would multiply. Marking
 * the answer `x-should-retry: false` makes the SDK throw it at once, headers intact.
 */
async function leaveRateLimitsToLimiter(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const response = await fetch(input, init);
  if (response.status !== 429) return response;
  const headers = new Headers(response.headers);
  headers.set('x-should-retry', 'false');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

/** A 429 from the SDK, with how long it asks to wait (`retry-after-ms`, else `Retry-After`). */
export const openAIRateLimit: RateLimitCheck = (err) => {
  if (!(err instanceof OpenAI.APIError) || err.status !== 429) return undefined;
  return { retryAfterMs: parseRetryAfter(err.headers, Date.now()) };
};

/** `retry-after-ms` (milliseconds), else `Retry-After` as seconds or an HTTP date; undefined if absent or unreadable. */
export function parseRetryAfter(headers: Headers | undefined, now: number): number | undefined {
  const ms = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers?.get('retry-after')?.trim();
  if (value === undefined || value === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The limiter of a process's model calls, from `model.limits`; build one per process and share it. */
export function createProcessModelLimiter(config: ModelConfig, log: Logger): ModelLimiter {
  return createModelLimiter({
    limits: config.limits,
    rateLimitRetries: config.rateLimitRetries,
    isRateLimited: openAIRateLimit,
    log: log.child({ component: 'model-limiter' }),
  });
}

/** The model a role uses: its own when configured, else the default. */
export function modelFor(config: ModelConfig, role: AgentRole): string {
  return config.roleModels[role] ?? config.model;
}

/** `prompt_cache_key` and the headers that tell the scripted model who asks (real endpoints ignore them). */
export function callerOf(taskId: string, role: AgentRole) {
  return {
    promptCacheKey: `stagegate:${taskId}:${role}`,
    headers: { 'x-stagegate-role': role, 'x-stagegate-task': taskId },
  };
}

/** SDK errors → MODEL_HTTP naming the endpoint; anything else passes through untouched. */
export function describeHttpFailure(err: unknown, endpoint: OpenAIEndpoint, context: { taskId: string; usage: Usage }): unknown {
  if (!(err instanceof OpenAI.APIError)) return err;
  const { baseURL, redact, timeoutMs } = endpoint;
  const what =
    err instanceof OpenAI.APIConnectionTimeoutError
      ? `did not answer within ${timeoutMs} ms`
      : err instanceof OpenAI.APIConnectionError
        ? `could not be reached (${connectionCause(err)})`
        : `answered ${err.message}`;
  // Some endpoints echo the key they rejected; it must not reach a log line.
  const message = redact(`model endpoint ${baseURL} ${what}`);
  return new StagegateError('MODEL_HTTP', message, {
    taskId: context.taskId,
    cause: err,
    details: { status: err.status, usage: context.usage },
  });
}

/** The most specific reason in the cause chain: undici wraps `ECONNREFUSED` in "fetch failed". */
function connectionCause(err: APIConnectionError): string {
  let reason = err.message;
  for (let cause: unknown = err.cause; cause instanceof Error; cause = cause.cause) {
    if ('code' in cause && typeof cause.code === 'string') return cause.code;
    reason = cause.message;
  }
  return reason;
}
