/**
 * The server-sent events OpenAI streams for a response, rebuilt from the finished response:
 * created, in_progress, then per output item added → parts and deltas → done, then completed.
 * Names and payloads match the real stream, so the openai SDK's `stream: true` and
 * `responses.stream()` accumulate them into the same response a plain request returns.
 */
import { stringField, type ScriptedResponse } from './response.js';

export interface StreamEvent {
  type: string;
  sequence_number: number;
  [field: string]: unknown;
}

/** Text is sent in this many deltas (fewer when it is shorter), to exercise accumulation. */
const DELTAS_PER_TEXT = 3;

export function streamEventsFor(response: ScriptedResponse): StreamEvent[] {
  const events: StreamEvent[] = [];
  const emit = (type: string, fields: Record<string, unknown>) =>
    events.push({ type, sequence_number: events.length, ...fields });

  const inProgress = { ...response, status: 'in_progress', output: [], usage: null };
  emit('response.created', { response: inProgress });
  emit('response.in_progress', { response: inProgress });
  response.output.forEach((item, outputIndex) => {
    const itemId = stringField(item, 'id');
    if (item.type === 'message' && Array.isArray(item.content)) {
      const added = { ...item, status: 'in_progress', content: [] };
      emit('response.output_item.added', { output_index: outputIndex, item: added });
      item.content.forEach((part: unknown, contentIndex) => {
        const at = { item_id: itemId, output_index: outputIndex, content_index: contentIndex };
        if (isOutputText(part)) {
          emit('response.content_part.added', { ...at, part: { ...part, text: '' } });
          for (const delta of splitText(part.text)) emit('response.output_text.delta', { ...at, delta, logprobs: [] });
          emit('response.output_text.done', { ...at, text: part.text, logprobs: [] });
        } else {
          emit('response.content_part.added', { ...at, part });
        }
        emit('response.content_part.done', { ...at, part });
      });
    } else if (item.type === 'function_call') {
      const args = stringField(item, 'arguments');
      const at = { item_id: itemId, output_index: outputIndex };
      const added = { ...item, status: 'in_progress', arguments: '' };
      emit('response.output_item.added', { output_index: outputIndex, item: added });
      for (const delta of splitText(args)) emit('response.function_call_arguments.delta', { ...at, delta });
      emit('response.function_call_arguments.done', { ...at, name: stringField(item, 'name'), arguments: args });
    } else {
      emit('response.output_item.added', { output_index: outputIndex, item });
    }
    emit('response.output_item.done', { output_index: outputIndex, item });
  });
  emit('response.completed', { response });
  return events;
}

/** One SSE frame per event, named like OpenAI's (`event:` line plus JSON `data:`). */
export function formatServerSentEvent(event: StreamEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

function isOutputText(part: unknown): part is Record<string, unknown> & { type: 'output_text'; text: string } {
  return (
    typeof part === 'object' &&
    part !== null &&
    'type' in part &&
    part.type === 'output_text' &&
    'text' in part &&
    typeof part.text === 'string'
  );
}

/** Text cut into a few deltas, as a model streams it. */
export function splitText(text: string): string[] {
  const chars = Array.from(text);
  const size = Math.max(1, Math.ceil(chars.length / DELTAS_PER_TEXT));
  const deltas: string[] = [];
  for (let i = 0; i < chars.length; i += size) deltas.push(chars.slice(i, i + size).join(''));
  return deltas;
}
