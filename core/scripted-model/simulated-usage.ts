/**
 * Deterministic token counts for scripted replies, close enough in shape to real ones that
 * cost and cache accounting can be tested: about four characters a token, and a cached prefix
 * counted in 64-token blocks, the way provider prefix caches work, against the previous prompt
 * sent with the same `prompt_cache_key`.
 */
import type { ResponsesRequestBody } from './request.js';

const CHARS_PER_TOKEN = 4;
const CACHE_BLOCK_TOKENS = 64;

export interface SimulatedUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

/**
 * The prompt in the order a model reads it, so an appended turn keeps the earlier prefix:
 * instructions, tools, input (Responses) or tools, messages (Chat Completions, whose first
 * message holds the instructions).
 */
export function serializePrompt(body: ResponsesRequestBody): string {
  const parts = body.messages !== undefined ? [body.tools ?? [], body.messages] : [body.instructions ?? '', body.tools ?? [], body.input ?? ''];
  return parts.map((part) => JSON.stringify(part)).join('');
}

export function countTokens(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

export function cachedTokens(previousPrompt: string | undefined, prompt: string): number {
  if (previousPrompt === undefined) return 0;
  let common = 0;
  const limit = Math.min(previousPrompt.length, prompt.length);
  while (common < limit && previousPrompt.charCodeAt(common) === prompt.charCodeAt(common)) common++;
  const tokens = Math.floor(common / CHARS_PER_TOKEN);
  return tokens - (tokens % CACHE_BLOCK_TOKENS);
}

/** Remembers the last prompt per cache key; one per server, so runs do not leak into each other. */
export class PromptCache {
  private readonly lastPrompt = new Map<string, string>();

  /** `reasoningChars`: the part of the output that is reasoning (counted in the output too, as OpenAI does). */
  usageFor(body: ResponsesRequestBody, outputChars: number, reasoningChars = 0): SimulatedUsage {
    const prompt = serializePrompt(body);
    const key = body.prompt_cache_key;
    const cached = key === undefined ? 0 : cachedTokens(this.lastPrompt.get(key), prompt);
    if (key !== undefined) this.lastPrompt.set(key, prompt);
    const input = countTokens(prompt.length);
    const output = countTokens(outputChars);
    return {
      input_tokens: input,
      input_tokens_details: { cached_tokens: cached },
      output_tokens: output,
      output_tokens_details: { reasoning_tokens: countTokens(reasoningChars) },
      total_tokens: input + output,
    };
  }
}
