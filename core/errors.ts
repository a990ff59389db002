/**
 * The one error type every part raises. `code` lets callers branch and lets the CLI
 * map a failure to an exit status; the message names the exact thing that is wrong.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'SCHEMA_INVALID'
  | 'NATS_UNREACHABLE'
  | 'BUS_TIMEOUT'
  | 'TASK_UNKNOWN'
  | 'SESSION_UNKNOWN'
  | 'DEAD_LETTER_UNKNOWN'
  | 'TASK_NOT_AT_GATE'
  | 'LIMIT_REACHED'
  | 'MODEL_HTTP'
  | 'GITHUB_HTTP'
  | 'MODEL_OUTPUT_INVALID'
  | 'PATCH_INVALID'
  | 'PATCH_REJECTED'
  | 'PATH_ESCAPE'
  | 'GIT_FAILED'
  | 'COMMAND_FAILED'
  | 'DEPLOY_FAILED'
  | 'TOOL_MISSING'
  | 'SCRIPT_EXHAUSTED'
  | 'SECRET_FOUND';

export interface StagegateErrorOptions extends ErrorOptions {
  taskId?: string;
  details?: Record<string, unknown>;
}

export class StagegateError extends Error {
  override name = 'StagegateError';
  readonly code: ErrorCode;
  readonly taskId: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: StagegateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.taskId = options.taskId;
    this.details = options.details;
  }
}

export function isStagegateError(err: unknown, code?: ErrorCode): err is StagegateError {
  return err instanceof StagegateError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
