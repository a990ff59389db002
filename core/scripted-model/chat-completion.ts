/**
 * Scripted answers served over Chat Completions (`POST /v1/chat/completions`), for agents set
 * to `wireApi: chat`. The script stays the same per role: the output items a Responses answer
 * stands for become one assistant message (message text → `content`, function calls →
 * `tool_calls`; reasoning items have no chat form). Streaming sends `chat.completion.chunk`s
 * the way OpenAI does: role, content deltas, tool call deltas, finish reason, then usage when
 * `stream_options.include_usage` asks for it, then `[DONE]`.
 */
import type { ResponsesRequestBody } from './request.js';
import { stringField, textOf } from './response.js';
import type { OutputItem } from './script.js';
import type { SimulatedUsage } from './simulated-usage.js';
import { splitText } from './stream-events.js';

interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: 0;
    message: { role: 'assistant'; content: string | null; refusal: null; tool_calls?: ChatToolCall[] };
    finish_reason: 'stop' | 'tool_calls';
    logprobs: null;
  }>;
  usage: ChatUsage;
}

export function buildChatCompletion(options: {
  requestIndex: number;
  body: ResponsesRequestBody;
  output: OutputItem[];
  usage: SimulatedUsage;
  createdAt: number;
}): ChatCompletion {
  const text = options.output
    .filter((item) => item.type === 'message' && Array.isArray(item.content))
    .flatMap((item) => (Array.isArray(item.content) ? item.content.map(textOf) : []))
    .join('');
  const toolCalls: ChatToolCall[] = options.output
    .filter((item) => item.type === 'function_call')
    .map((item) => ({
      id: stringField(item, 'call_id'),
      type: 'function',
      function: { name: stringField(item, 'name'), arguments: stringField(item, 'arguments') },
    }));
  const u = options.usage;
  return {
    id: `chatcmpl_scripted_${options.requestIndex}`,
    object: 'chat.completion',
    created: options.createdAt,
    model: options.body.model ?? 'scripted-model',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: text === '' && toolCalls.length > 0 ? null : text,
          refusal: null,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
        finish_reason: toolCalls.length > 0 ? 'tool_calls' : 'stop',
        logprobs: null,
      },
    ],
    usage: {
      prompt_tokens: u.input_tokens,
      completion_tokens: u.output_tokens,
      total_tokens: u.total_tokens,
      prompt_tokens_details: { cached_tokens: u.input_tokens_details.cached_tokens },
      completion_tokens_details: { reasoning_tokens: u.output_tokens_details.reasoning_tokens },
    },
  };
}

/** The completion as `chat.completion.chunk` objects; `includeUsage` adds the usage-only last chunk. */
export function chatChunksFor(completion: ChatCompletion, includeUsage: boolean): unknown[] {
  const { id, created, model } = completion;
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
  });
  const choice = completion.choices[0];
  if (choice === undefined) return [];
  const chunks: unknown[] = [chunk({ role: 'assistant', content: '' })];
  for (const delta of splitText(choice.message.content ?? '')) chunks.push(chunk({ content: delta }));
  (choice.message.tool_calls ?? []).forEach((call, index) => {
    chunks.push(chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] }));
    for (const delta of splitText(call.function.arguments)) chunks.push(chunk({ tool_calls: [{ index, function: { arguments: delta } }] }));
  });
  chunks.push(chunk({}, choice.finish_reason));
  if (includeUsage) chunks.push({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: completion.usage });
  return chunks;
}

/** Chat streams carry no `event:` line, and end with a literal `[DONE]`. */
export function formatChatSse(chunks: unknown[]): string {
  return `${chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join('')}data: [DONE]\n\n`;
}
