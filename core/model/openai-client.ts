/**
 * The one place an `OpenAI` SDK client is built and its errors are worded, shared by the
 * structured-output client (client.ts) and the agent loop's turn client (turn.ts): the key and
 * base URL come from config, retries on 429/5xx are the SDK's own, and a failure becomes
 * MODEL_HTTP naming the endpoint, never echoing the key.
 */
import OpenAI, { type APIConnectionError } from 'openai';
import type { AgentRole, Usage } from '../bus/messages.js';
import type { ModelConfig } from '../config.js';
import { StagegateError } from '../errors.js';
import type { Logger } from '../log.js';

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

export interface OpenAIEndpoint {
  openai: OpenAI;
  baseURL: string;
  apiKey: string;
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
  const openai = new OpenAI({
    apiKey: config.apiKey,
    baseURL,
    maxRetries: config.maxRetries,
    timeout: config.timeoutMs,
    logger: log.child({ component: 'openai' }),
    logLevel: 'warn',
  });
  return { openai, baseURL, apiKey: config.apiKey, timeoutMs: config.timeoutMs };
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
  const { baseURL, apiKey, timeoutMs } = endpoint;
  const what =
    err instanceof OpenAI.APIConnectionTimeoutError
      ? `did not answer within ${timeoutMs} ms`
      : err instanceof OpenAI.APIConnectionError
        ? `could not be reached (${connectionCause(err)})`
        : `answered ${err.message}`;
  // Some endpoints echo the key they rejected; it must not reach a log line.
  const message = `model endpoint ${baseURL} ${what}`.replaceAll(apiKey, '[redacted]');
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
