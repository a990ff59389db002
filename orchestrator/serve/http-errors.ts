/**
 * JSON error bodies, one shape for every route: `{ "error": { "code", "message" } }`, plus
 * the mapping from Stagegate errors to HTTP statuses, so each route only throws.
 */
import type { Response } from 'express';
import { isStagegateError } from '../../core/errors.js';
import { GateAlreadyDecided } from '../gate-outcome.js';

export type HttpErrorCode =
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'TASK_UNKNOWN'
  | 'TASK_NOT_AT_GATE'
  | 'ALREADY_DECIDED'
  | 'ALREADY_APPROVED'
  | 'SCHEMA_INVALID'
  | 'PAYLOAD_TOO_LARGE'
  | 'LIMIT_REACHED'
  | 'NATS_UNREACHABLE'
  | 'INTERNAL';

/** An error a route throws to answer with this status and body. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: HttpErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
    /** Response headers that go with it (`Retry-After` on a 429). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sendError(res: Response, status: number, code: HttpErrorCode, message: string, extra: Record<string, unknown> = {}): void {
  res.status(status).json({ error: { code, message, ...extra } });
}

/** The answer for a thrown error; undefined for an unexpected one (a 500, logged by the caller). */
export function httpErrorOf(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof GateAlreadyDecided) return new HttpError(409, 'ALREADY_DECIDED', err.message, { decided: err.decided });
  if (isStagegateError(err, 'TASK_UNKNOWN')) return new HttpError(404, 'TASK_UNKNOWN', err.message);
  if (isStagegateError(err, 'TASK_NOT_AT_GATE')) return new HttpError(409, 'TASK_NOT_AT_GATE', err.message);
  if (isStagegateError(err, 'SCHEMA_INVALID')) return new HttpError(400, 'SCHEMA_INVALID', err.message);
  if (isBodyParserError(err)) {
    if (err.type === 'entity.too.large') return new HttpError(413, 'PAYLOAD_TOO_LARGE', `request body is larger than ${err.limit} bytes`);
    if (err.type === 'entity.parse.failed') return new HttpError(400, 'SCHEMA_INVALID', 'request body is not valid JSON');
    return new HttpError(err.status, 'SCHEMA_INVALID', `request body cannot be read: ${err.message}`);
  }
  return undefined;
}

/** What express's body parsers throw (http-errors objects with `type`). */
function isBodyParserError(err: unknown): err is Error & { type: string; status: number; limit?: number } {
  return (
    err instanceof Error &&
    'type' in err &&
    typeof err.type === 'string' &&
    'status' in err &&
    typeof err.status === 'number' &&
    err.status >= 400 &&
    err.status < 500
  );
}
