/**
 * What the scripted model answers: per agent role, a queue of answers served in order.
 * The JSON file form is parsed with `ScriptFile`; in-process callers may also queue functions
 * that build an answer from the request they are answering.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { AgentRole } from '../bus/messages.js';
import { StagegateError, errorMessage } from '../errors.js';
import { parseJsonAt } from '../parse.js';
import type { RecordedRequest } from './request.js';

export const ErrorAnswer = z.strictObject({
  status: z.number().int().min(400, 'expected an HTTP error status (400-599)').max(599),
  message: z.string().min(1),
  /** OpenAI's `error.type`; defaults by status (`server_error`, `requests`, `invalid_request_error`). */
  type: z.string().min(1).optional(),
  /** OpenAI's `error.code`, e.g. `rate_limit_exceeded`. */
  code: z.string().min(1).optional(),
  /** Sent as the Retry-After header; fractions of a second keep tests fast. */
  retryAfterSeconds: z.number().nonnegative().optional(),
});
export type ErrorAnswer = z.infer<typeof ErrorAnswer>;

/** One Responses API output item, passed through as written (`message`, `function_call`, ...). */
export const OutputItem = z.looseObject({ type: z.string().min(1) });
export type OutputItem = z.infer<typeof OutputItem>;

const ANSWER_KINDS = ['json', 'text', 'output', 'error'] as const;

/**
 * Exactly one of: `json` (served as output text holding that value as JSON), `text` (raw
 * output text, e.g. a broken reply), `output` (raw output items), `error` (an HTTP error).
 */
export const Answer = z
  .strictObject({
    json: z.json().optional(),
    text: z.string().optional(),
    output: z.array(OutputItem).optional(),
    error: ErrorAnswer.optional(),
    /** Wait this long before answering. */
    delayMs: z.number().int().nonnegative().optional(),
  })
  .refine((answer) => ANSWER_KINDS.filter((kind) => answer[kind] !== undefined).length === 1, {
    message: `expected exactly one of ${ANSWER_KINDS.map((k) => `'${k}'`).join(', ')}`,
  });
export type Answer = z.infer<typeof Answer>;

/** Builds the answer from the request it answers; in-process use only. */
export type AnswerFn = (request: RecordedRequest) => Answer | Promise<Answer>;
export type ScriptedAnswer = Answer | AnswerFn;

export const ScriptFile = z.strictObject({
  answers: z.partialRecord(AgentRole, z.array(Answer)),
});
export type ScriptFile = z.infer<typeof ScriptFile>;

/** A script in memory: a `ScriptFile`, or one whose answers include functions. */
export interface Script {
  answers: Partial<Record<AgentRole, ScriptedAnswer[]>>;
}

/** Where a script is read from when it is not given in memory. */
export interface ScriptSource {
  file: string;
}

export async function loadScriptFile(path: string): Promise<ScriptFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new StagegateError('CONFIG_INVALID', `cannot read model script ${path}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  return parseJsonAt(ScriptFile, text, `model script ${path}`);
}
