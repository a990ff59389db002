/**
 * The one model client every agent uses: a structured-output call on the OpenAI Responses API.
 *
 * Every call is stateless (`store: false`, never `previous_response_id`): a retried job or a
 * second worker can replay it from the bus message alone. The stable instructions go first and
 * `prompt_cache_key` names task and role, so repeated prefixes hit the provider's cache.
 * The `x-stagegate-*` headers let the scripted model server answer per role; real endpoints
 * ignore them. Every call waits its turn in the process's limiter (limiter.ts), which also
 * handles 429s; retries with backoff on 5xx are the SDK's own.
 */
import type OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import type { z } from 'zod';
import type { AgentRole, Usage } from '../bus/messages.js';
import type { ModelConfig } from '../config.js';
import { StagegateError } from '../errors.js';
import type { Logger } from '../log.js';
import { estimateTokens, type ModelLimiter } from './limiter.js';
import { callerOf, createOpenAIEndpoint, createProcessModelLimiter, describeHttpFailure, modelFor } from './openai-client.js';
import { checkReply, repairPrompt } from './reply.js';
import { addCallUsage, addQueueWait } from './usage.js';
import { emptyUsage } from '../task-record.js';

export interface StructuredRequest<S extends z.ZodType> {
  taskId: string;
  role: AgentRole;
  /** Stable text (the agent's prompt.md): sent as `instructions`, the cached prefix. */
  instructions: string;
  /** The job at hand, sent as the user message. */
  input: string;
  schema: S;
  /** Names the JSON schema in `text.format` (letters, digits, `_` and `-`). */
  schemaName: string;
}

export interface StructuredReply<T> {
  value: T;
  /** Summed over every call this request made, the repair round included; with the time queued. */
  usage: Usage;
}

export interface ModelClient {
  /**
   * Asks for a reply matching `schema`; one repair round if it does not. Throws MODEL_HTTP when
   * the endpoint fails after the SDK's retries, MODEL_OUTPUT_INVALID when the repaired reply
   * still does not match. Both carry the usage spent so far in `details.usage`.
   */
  generateStructured<S extends z.ZodType>(request: StructuredRequest<S>): Promise<StructuredReply<z.infer<S>>>;
}

/** `limiter`: the process's shared one; absent, the client gets one of its own. */
export function createModelClient(config: ModelConfig, log: Logger, limiter?: ModelLimiter): ModelClient {
  const endpoint = createOpenAIEndpoint(config, log);
  const { openai } = endpoint;
  const limits = limiter ?? createProcessModelLimiter(config, log);

  async function generateStructured<S extends z.ZodType>(
    request: StructuredRequest<S>,
  ): Promise<StructuredReply<z.infer<S>>> {
    const { taskId, role, schema } = request;
    const model = modelFor(config, role);
    const caller = callerOf(taskId, role);
    const format = zodTextFormat(schema, request.schemaName);
    let usage = emptyUsage();

    const call = async (input: OpenAI.Responses.ResponseInput, round: number): Promise<string> => {
      const body = {
        model,
        store: false,
        instructions: request.instructions,
        input,
        prompt_cache_key: caller.promptCacheKey,
        text: { format },
      } satisfies OpenAI.Responses.ResponseCreateParamsNonStreaming;
      let response: OpenAI.Responses.Response;
      let queueWaitMs: number;
      try {
        ({ value: response, queueWaitMs } = await limits.run({
          baseURL: endpoint.baseURL,
          model,
          estimatedTokens: estimateTokens(body),
          send: () => openai.responses.create(body, { headers: caller.headers }),
          tokensUsed: (r) => (r.usage?.input_tokens ?? 0) + (r.usage?.output_tokens ?? 0),
        }));
      } catch (err) {
        throw describeHttpFailure(err, endpoint, { taskId, usage });
      }
      usage = addQueueWait(addCallUsage(usage, response.usage, `usage in ${role} reply for task ${taskId}`), queueWaitMs);
      log.debug(
        { taskId, role, model, round, responseId: response.id, status: response.status, usage: response.usage, queueWaitMs },
        'model call',
      );
      return response.output_text;
    };

    const conversation: OpenAI.Responses.ResponseInput = [{ role: 'user', content: request.input }];
    const firstText = await call(conversation, 1);
    const first = checkReply(schema, firstText);
    if (first.ok) return { value: first.value, usage };

    const repairRound: OpenAI.Responses.ResponseInput = [
      ...conversation,
      { role: 'assistant', content: firstText },
      { role: 'user', content: repairPrompt(first.problem) },
    ];
    const repaired = checkReply(schema, await call(repairRound, 2));
    if (repaired.ok) return { value: repaired.value, usage };
    throw new StagegateError('MODEL_OUTPUT_INVALID', `${role} reply for task ${taskId}: ${repaired.problem}`, {
      taskId,
      details: { usage, firstProblem: first.problem },
    });
  }

  return { generateStructured };
}
