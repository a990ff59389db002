/**
 * A request the scripted model received: the parsed body, who asked (role and task from the
 * `x-stagegate-*` headers, else from `prompt_cache_key`), and the headers minus credentials.
 * One `RecordedRequest` per line is what the `--record` file holds.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';

/**
 * The request fields the scripted model reads, from a Responses API body (`instructions`,
 * `input`) or a Chat Completions body (`messages`); the rest are kept as sent.
 */
export const ResponsesRequestBody = z.looseObject({
  model: z.string().optional(),
  instructions: z.string().nullish(),
  input: z.union([z.string(), z.array(z.unknown())]).optional(),
  messages: z.array(z.unknown()).optional(),
  tools: z.array(z.unknown()).optional(),
  prompt_cache_key: z.string().optional(),
  store: z.boolean().nullish(),
  previous_response_id: z.string().nullish(),
  stream: z.boolean().nullish(),
});
export type ResponsesRequestBody = z.infer<typeof ResponsesRequestBody>;

export const RecordedRequest = z.object({
  /** 1-based position among every request the server received. */
  index: z.number().int().positive(),
  method: z.string(),
  path: z.string(),
  role: z.string().nullable(),
  taskId: z.string().nullable(),
  headers: z.record(z.string(), z.string()),
  body: ResponsesRequestBody,
  receivedAt: z.iso.datetime(),
});
export type RecordedRequest = z.infer<typeof RecordedRequest>;

/** Credentials never reach the record: tests and record files are shared freely. */
const SECRET_HEADERS = new Set(['authorization', 'api-key', 'x-api-key']);

export function recordableHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || SECRET_HEADERS.has(name)) continue;
    kept[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return kept;
}

/** `stagegate:<taskId>:<role>`, the cache key the model client sends. */
const CACHE_KEY = /^stagegate:([^:]+):([^:]+)$/;

export function identifyCaller(
  headers: Record<string, string>,
  body: ResponsesRequestBody,
): { role: string | null; taskId: string | null } {
  const fromKey = CACHE_KEY.exec(body.prompt_cache_key ?? '');
  return {
    role: headers['x-stagegate-role'] ?? fromKey?.[2] ?? null,
    taskId: headers['x-stagegate-task'] ?? fromKey?.[1] ?? null,
  };
}
