/**
 * Builds Responses API reply objects for scripted answers, in the shape the openai SDK reads:
 * `object: "response"`, `status: "completed"`, `output` items and `usage`. Ids derive from the
 * request's position, so two runs of the same script produce the same replies.
 */
import type { Answer, OutputItem } from './script.js';
import type { ResponsesRequestBody } from './request.js';
import type { SimulatedUsage } from './simulated-usage.js';

export interface ScriptedResponse {
  id: string;
  object: 'response';
  created_at: number;
  status: 'in_progress' | 'completed';
  error: null;
  incomplete_details: null;
  instructions: string | null;
  model: string;
  output: OutputItem[];
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  prompt_cache_key: string | null;
  store: boolean;
  text: unknown;
  tool_choice: unknown;
  tools: unknown[];
  usage: SimulatedUsage | null;
  metadata: Record<string, string>;
}

const DEFAULT_MODEL = 'scripted-model';

/** The output items a non-error answer stands for. */
export function outputItemsFor(answer: Answer, requestIndex: number): OutputItem[] {
  if (answer.output !== undefined) return answer.output;
  const text = answer.json !== undefined ? JSON.stringify(answer.json) : (answer.text ?? '');
  return [
    {
      id: `msg_scripted_${requestIndex}`,
      type: 'message',
      status: 'completed',
      role: 'assistant',
      content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
    },
  ];
}

/** What the model "wrote": the text a real model would have produced as output tokens. */
export function outputChars(items: OutputItem[]): number {
  let chars = 0;
  for (const item of items) {
    if (item.type === 'message' && Array.isArray(item.content)) {
      for (const part of item.content) chars += textOf(part).length;
    } else if (item.type === 'function_call') {
      chars += stringField(item, 'name').length + stringField(item, 'arguments').length;
    } else {
      chars += JSON.stringify(item).length;
    }
  }
  return chars;
}

/** The reasoning part of the output: summaries and encrypted content of reasoning items. */
export function reasoningChars(items: OutputItem[]): number {
  let chars = 0;
  for (const item of items) {
    if (item.type !== 'reasoning') continue;
    chars += stringField(item, 'encrypted_content').length;
    if (Array.isArray(item.summary)) for (const part of item.summary) chars += textOf(part).length;
  }
  return chars;
}

export function buildResponse(options: {
  requestIndex: number;
  body: ResponsesRequestBody;
  output: OutputItem[];
  usage: SimulatedUsage;
  createdAt: number;
}): ScriptedResponse {
  const { body } = options;
  return {
    id: `resp_scripted_${options.requestIndex}`,
    object: 'response',
    created_at: options.createdAt,
    status: 'completed',
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    model: body.model ?? DEFAULT_MODEL,
    output: options.output,
    parallel_tool_calls: body.parallel_tool_calls !== false,
    previous_response_id: body.previous_response_id ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    // Like the real API: responses are stored unless the request says otherwise.
    store: body.store ?? true,
    text: body.text ?? { format: { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    usage: options.usage,
    metadata: {},
  };
}

export function textOf(part: unknown): string {
  return typeof part === 'object' && part !== null && 'text' in part && typeof part.text === 'string' ? part.text : '';
}

export function stringField(item: OutputItem, field: string): string {
  const value = item[field];
  return typeof value === 'string' ? value : '';
}
