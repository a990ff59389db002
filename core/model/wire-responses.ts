/**
 * One agent turn on the Responses API, streamed: stateless (`store: false`, never
 * `previous_response_id`), the whole conversation sent each time, reasoning carried forward as
 * `encrypted_content`. Output items are taken as each `response.output_item.done` arrives and
 * the usage from the closing `response.completed` (or `response.incomplete`).
 */
import type OpenAI from 'openai';
import type { Usage } from '../bus/messages.js';
import { StagegateError } from '../errors.js';
import type { ConversationItem } from './conversation.js';
import type { WireCall } from './turn.js';
import { addCallUsage } from './usage.js';
import { emptyUsage } from '../task-record.js';

export async function runResponsesTurn(openai: OpenAI, call: WireCall): Promise<{ items: ConversationItem[]; usage: Usage; incomplete: string | null }> {
  const { request } = call;
  const stream = await openai.responses.create(
    {
      model: call.model,
      instructions: request.instructions,
      input: [...request.input],
      tools: [...request.tools],
      tool_choice: request.toolChoice ?? 'auto',
      parallel_tool_calls: true,
      store: false,
      stream: true,
      include: ['reasoning.encrypted_content'],
      prompt_cache_key: call.promptCacheKey,
    },
    { headers: call.headers },
  );
  const items: ConversationItem[] = [];
  let usage: Usage | undefined;
  let incomplete: string | null = null;
  for await (const event of stream) {
    switch (event.type) {
      case 'response.output_item.done': {
        const item = fromOutputItem(event.item);
        if (item !== undefined) items.push(item);
        break;
      }
      case 'response.completed':
        usage = addCallUsage(emptyUsage(), event.response.usage, call.source);
        break;
      case 'response.incomplete':
        usage = addCallUsage(emptyUsage(), event.response.usage, call.source);
        incomplete = event.response.incomplete_details?.reason ?? 'incomplete';
        break;
      case 'response.failed': {
        const error = event.response.error;
        throw new StagegateError('MODEL_HTTP', `${call.source}: the response failed (${error?.code ?? 'no code'}: ${error?.message ?? 'no message'})`, {
          taskId: request.taskId,
          details: { usage: addCallUsage(emptyUsage(), event.response.usage, call.source) },
        });
      }
      default:
        break;
    }
  }
  if (usage === undefined) {
    throw new StagegateError('MODEL_HTTP', `${call.source}: the stream ended before response.completed`, {
      taskId: request.taskId,
      details: { usage: addCallUsage(emptyUsage(), undefined, call.source) },
    });
  }
  return { items, usage, incomplete };
}

/** The items a loop keeps; anything else (web search calls, images...) is not part of a coder's turn. */
function fromOutputItem(item: OpenAI.Responses.ResponseOutputItem): ConversationItem | undefined {
  switch (item.type) {
    case 'message': {
      const text = item.content.map((part) => (part.type === 'output_text' ? part.text : part.refusal)).join('');
      return { type: 'message', role: 'assistant', content: text };
    }
    case 'function_call':
      return { type: 'function_call', call_id: item.call_id, name: item.name, arguments: item.arguments };
    case 'reasoning':
      // Without its encrypted content a reasoning item cannot be sent back statelessly.
      if (item.encrypted_content === undefined || item.encrypted_content === null || item.encrypted_content === '') return undefined;
      return {
        type: 'reasoning',
        id: item.id,
        summary: item.summary.map((s) => ({ type: 'summary_text' as const, text: s.text })),
        encrypted_content: item.encrypted_content,
      };
    default:
      return undefined;
  }
}
