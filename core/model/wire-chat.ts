/**
 * One agent turn on Chat Completions, for servers that speak nothing else. The conversation
 * maps onto chat messages: instructions → the system message, function calls → the assistant
 * message's `tool_calls`, their outputs → `tool` messages. Reasoning items have no chat form
 * and are left out. The mapping is a pure function of the items, so an appended conversation
 * still renders as an appended message list (the prefix a cache can serve).
 */
import type OpenAI from 'openai';
import type { Usage } from '../bus/messages.js';
import type { ConversationItem, FunctionTool } from './conversation.js';
import type { WireCall } from './turn.js';
import { addCallUsage } from './usage.js';
import { emptyUsage } from '../task-record.js';

type ChatMessage = OpenAI.Chat.ChatCompletionMessageParam;
type AssistantParam = OpenAI.Chat.ChatCompletionAssistantMessageParam;

export function toChatMessages(instructions: string, items: readonly ConversationItem[]): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: instructions }];
  let assistant: AssistantParam | undefined;
  const flush = () => {
    if (assistant !== undefined) messages.push(assistant);
    assistant = undefined;
  };
  for (const item of items) {
    switch (item.type) {
      case 'message':
        if (item.role === 'user') {
          flush();
          messages.push({ role: 'user', content: item.content });
        } else if (assistant === undefined) {
          assistant = { role: 'assistant', content: item.content };
        } else {
          // One chat message per turn: its text and its tool calls, which the tool messages follow.
          assistant.content = `${typeof assistant.content === 'string' ? assistant.content : ''}${item.content}`;
        }
        break;
      case 'function_call': {
        assistant ??= { role: 'assistant', content: null };
        const call = { id: item.call_id, type: 'function' as const, function: { name: item.name, arguments: item.arguments } };
        assistant.tool_calls = [...(assistant.tool_calls ?? []), call];
        break;
      }
      case 'function_call_output':
        flush();
        messages.push({ role: 'tool', tool_call_id: item.call_id, content: item.output });
        break;
      case 'reasoning':
        break;
    }
  }
  flush();
  return messages;
}

export function toChatTools(tools: readonly FunctionTool[]): OpenAI.Chat.ChatCompletionFunctionTool[] {
  return tools.map((tool) => ({
    type: 'function',
    function: { name: tool.name, description: tool.description, parameters: tool.parameters, strict: tool.strict },
  }));
}

export async function runChatTurn(openai: OpenAI, call: WireCall): Promise<{ items: ConversationItem[]; usage: Usage; incomplete: string | null }> {
  const { request } = call;
  const withTools =
    request.tools.length === 0
      ? {}
      : { tools: toChatTools(request.tools), tool_choice: request.toolChoice ?? 'auto', parallel_tool_calls: true };
  const stream = await openai.chat.completions.create(
    {
      model: call.model,
      messages: toChatMessages(request.instructions, request.input),
      ...withTools,
      store: false,
      stream: true,
      stream_options: { include_usage: true },
      prompt_cache_key: call.promptCacheKey,
    },
    { headers: call.headers },
  );

  let content = '';
  const calls: Array<{ id: string; name: string; arguments: string }> = [];
  let rawUsage: OpenAI.CompletionUsage | undefined;
  let finish: string | null = null;
  for await (const chunk of stream) {
    if (chunk.usage !== undefined && chunk.usage !== null) rawUsage = chunk.usage;
    const choice = chunk.choices[0];
    if (choice === undefined) continue;
    content += choice.delta.content ?? '';
    for (const delta of choice.delta.tool_calls ?? []) {
      const at = (calls[delta.index] ??= { id: '', name: '', arguments: '' });
      if (delta.id !== undefined && delta.id !== '') at.id = delta.id;
      at.name += delta.function?.name ?? '';
      at.arguments += delta.function?.arguments ?? '';
    }
    if (choice.finish_reason !== null) finish = choice.finish_reason;
  }

  const items: ConversationItem[] = [];
  if (content !== '') items.push({ type: 'message', role: 'assistant', content });
  calls.forEach((c, index) => {
    // Servers that omit the id still need one to pair the call with its output.
    const callId = c.id === '' ? `call_${request.input.length}_${index}` : c.id;
    items.push({ type: 'function_call', call_id: callId, name: c.name, arguments: c.arguments });
  });
  const usage = addCallUsage(emptyUsage(), rawUsage === undefined ? undefined : fromChatUsage(rawUsage), call.source);
  const incomplete = finish === 'length' ? 'max_output_tokens' : finish === 'content_filter' ? 'content_filter' : null;
  return { items, usage, incomplete };
}

/** Chat's usage block in the Responses shape `addCallUsage` reads. */
function fromChatUsage(usage: OpenAI.CompletionUsage) {
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: { cached_tokens: usage.prompt_tokens_details?.cached_tokens ?? 0 },
    output_tokens: usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: usage.completion_tokens_details?.reasoning_tokens ?? 0 },
  };
}
