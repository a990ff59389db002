import type { ErrorCode } from '../core/errors.js';

/**
 * The one table from error code to exit status. 2 means "you asked for something that
 * cannot be done as asked" (bad input, unknown task, not at a gate); 4 "not now": a limit
 * refused to start a task until the time it names; 1 is everything else.
 */
export const EXIT_CODE: Record<ErrorCode, number> = {
  CONFIG_INVALID: 2,
  SCHEMA_INVALID: 2,
  TASK_UNKNOWN: 2,
  SESSION_UNKNOWN: 2,
  DEAD_LETTER_UNKNOWN: 2,
  TASK_NOT_AT_GATE: 2,
  LIMIT_REACHED: 4,
  PATCH_INVALID: 2,
  PATCH_REJECTED: 3,
  PATH_ESCAPE: 2,
  NATS_UNREACHABLE: 1,
  BUS_TIMEOUT: 1,
  MODEL_HTTP: 1,
  GITHUB_HTTP: 1,
  MODEL_OUTPUT_INVALID: 1,
  GIT_FAILED: 1,
  COMMAND_FAILED: 1,
  DEPLOY_FAILED: 1,
  TOOL_MISSING: 1,
  SCRIPT_EXHAUSTED: 1,
  SECRET_FOUND: 1,
};
