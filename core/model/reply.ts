/**
 * Checks a model's structured reply against the zod schema the request was built from, and
 * words the one repair request sent when it does not match. Strict JSON schema mode makes a
 * mismatch rare, but refusals, truncation and compatible endpoints without strict mode happen.
 */
import type { z } from 'zod';
import { describeZodIssues } from '../zod-issues.js';

export type ReplyCheck<T> = { ok: true; value: T } | { ok: false; problem: string };

export function checkReply<S extends z.ZodType>(schema: S, text: string): ReplyCheck<z.infer<S>> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const shown = text.length === 0 ? 'an empty reply' : `${text.length} characters`;
    return { ok: false, problem: `not valid JSON (${(err as Error).message}; got ${shown})` };
  }
  const result = schema.safeParse(json);
  return result.success ? { ok: true, value: result.data } : { ok: false, problem: describeZodIssues(result.error) };
}

export function repairPrompt(problem: string): string {
  return [
    `Your previous reply does not match the required JSON schema: ${problem}.`,
    'Reply again with the complete answer as one JSON value that matches the schema, and nothing else.',
  ].join('\n');
}
