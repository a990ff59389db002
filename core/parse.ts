import type { z } from 'zod';
import { StagegateError } from './errors.js';
import { describeZodIssues } from './zod-issues.js';

/** Parses outside data at a boundary; a failure names the source and every field that is wrong. */
export function parseAt<S extends z.ZodType>(schema: S, value: unknown, source: string, taskId?: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new StagegateError('SCHEMA_INVALID', `${source}: ${describeZodIssues(result.error)}`, {
    ...(taskId === undefined ? {} : { taskId }),
    details: { issues: result.error.issues },
  });
}

/** JSON text → validated value; bad JSON is reported like any other schema failure. */
export function parseJsonAt<S extends z.ZodType>(schema: S, text: string, source: string, taskId?: string): z.infer<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StagegateError('SCHEMA_INVALID', `${source}: not valid JSON (${(err as Error).message})`, {
      ...(taskId === undefined ? {} : { taskId }),
      cause: err,
    });
  }
  return parseAt(schema, value, source, taskId);
}
