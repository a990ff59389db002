/**
 * The agent loop's model client: one streamed turn at a time, the whole conversation sent each
 * turn (stateless), over the Responses API or, for servers that only speak it, Chat Completions
 * (`model.wireApi`). The caller owns the conversation; this module neither keeps nor rewrites it.
 * `prompt_cache_key` names task and role, so a task's turns share the provider's prefix cache.
 * Each turn waits its turn in the process's limiter (limiter.ts), which also handles 429s.
 */
import type OpenAI from 'openai';
import type { AgentRole, Usage } from '../bus/messages.js';
import type { ModelConfig } from '../config.js';
import { isStagegateError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ConversationItem, FunctionTool } from './conversation.js';
import { estimateTokens, type ModelLimiter } from './limiter.js';
import { callerOf, createOpenAIEndpoint, createProcessModelLimiter, describeHttpFailure, modelFor } from './openai-client.js';
import { addQueueWait } from './usage.js';
import { emptyUsage } from '../task-record.js';
import { runChatTurn } from './wire-chat.js';
import { runResponsesTurn } from './wire-responses.js';

export interface TurnRequest {
  taskId: string;
  /** The agent's prompt: first in every request, never changed within a task. */
  instructions: string;
  /** Sent as given, in this order, every turn. */
  tools: readonly FunctionTool[];
  input: readonly ConversationItem[];
  /** `none` asks for text only (a compaction summary); the tools are still sent, keeping the prefix. */
  toolChoice?: 'auto' | 'none';
}

export interface TurnReply {
  /** Assistant messages, reasoning items (with encrypted content) and function calls, in output order. */
  items: ConversationItem[];
  usage: Usage;
  /** Why the reply stopped short (`max_output_tokens`, `content_filter`), or null. */
  incomplete: string | null;
}

export interface TurnClient {
  readonly role: AgentRole;
  readonly model: string;
  readonly wireApi: ModelConfig['wireApi'];
  /** Throws MODEL_HTTP (with the usage spent in `details.usage`) when the endpoint fails. */
  runTurn(request: TurnRequest): Promise<TurnReply>;
}

/** What a wire adapter gets for one call. */
export interface WireCall {
  request: TurnRequest;
  model: string;
  promptCacheKey: string;
  headers: Record<string, string>;
  /** Names the reply in error messages: `coder turn reply for task t-1`. */
  source: string;
}

const WIRES: Record<ModelConfig['wireApi'], (openai: OpenAI, call: WireCall) => Promise<TurnReply>> = {
  responses: runResponsesTurn,
  chat: runChatTurn,
};

/** `limiter`: the process's shared one; absent, the client gets one of its own. */
export function createTurnClient(config: ModelConfig, role: AgentRole, log: Logger, limiter?: ModelLimiter): TurnClient {
  const endpoint = createOpenAIEndpoint(config, log);
  const model = modelFor(config, role);
  const wire = WIRES[config.wireApi];
  const limits = limiter ?? createProcessModelLimiter(config, log);

  async function runTurn(request: TurnRequest): Promise<TurnReply> {
    const caller = callerOf(request.taskId, role);
    const call: WireCall = { request, model, ...caller, source: `${role} turn reply for task ${request.taskId}` };
    try {
      const { value: reply, queueWaitMs } = await limits.run({
        baseURL: endpoint.baseURL,
        model,
        estimatedTokens: estimateTokens([request.instructions, request.tools, request.input]),
        send: () => wire(endpoint.openai, call),
        tokensUsed: (r) => r.usage.inputTokens + r.usage.outputTokens,
      });
      return { ...reply, usage: addQueueWait(reply.usage, queueWaitMs) };
    } catch (err) {
      if (isStagegateError(err)) throw err;
      throw describeHttpFailure(err, endpoint, { taskId: request.taskId, usage: emptyUsage() });
    }
  }

  return { role, model, wireApi: config.wireApi, runTurn };
}
