/**
 * The coder's tools, in a fixed order, and the one entry point that runs a call. The
 * definitions are built once and never change, so the request prefix the model sees stays
 * byte-identical (and cacheable) turn after turn. A call never throws for what the model got
 * wrong — an unknown tool, arguments that are not JSON or do not fit the schema, a path outside
 * the worktree, a file that is not there: each comes back as `error: …` for the model to read.
 */
import { z } from 'zod';
import { isStagegateError } from '../../../../core/errors.js';
import { describeZodIssues } from '../../../../core/zod-issues.js';
import type { ToolContext, ToolDefinition, ToolOutcome } from '../tool-types.js';
import { applyPatchTool } from './apply-patch.js';
import { toolError, type ToolSpec } from './define-tool.js';
import { finishTool } from './finish.js';
import { listFilesTool } from './list-files.js';
import { readFileTool } from './read-file.js';
import { searchTool } from './search.js';
import { shellTool } from './shell.js';
import { updatePlanTool } from './update-plan.js';

interface RegisteredTool {
  name: string;
  description: string;
  args: z.ZodType;
  run(args: unknown, ctx: ToolContext): Promise<ToolOutcome>;
}

function register<S extends z.ZodType>(spec: ToolSpec<S>): RegisteredTool {
  return {
    name: spec.name,
    description: spec.description,
    args: spec.args,
    run: async (value, ctx) => {
      const parsed = spec.args.safeParse(value);
      if (!parsed.success) return toolError(`invalid arguments for ${spec.name}: ${describeZodIssues(parsed.error)}`);
      return spec.execute(parsed.data, ctx);
    },
  };
}

const TOOLS: readonly RegisteredTool[] = [
  register(readFileTool),
  register(listFilesTool),
  register(searchTool),
  register(applyPatchTool),
  register(shellTool),
  register(updatePlanTool),
  register(finishTool),
];

let definitions: readonly ToolDefinition[] | undefined;

export function toolDefinitions(): readonly ToolDefinition[] {
  definitions ??= Object.freeze(
    TOOLS.map((tool) => Object.freeze({ type: 'function' as const, name: tool.name, description: tool.description, parameters: strictParameters(tool.args), strict: true })),
  );
  return definitions;
}

export async function executeToolCall(name: string, argumentsJson: string, ctx: ToolContext): Promise<ToolOutcome> {
  const tool = TOOLS.find((candidate) => candidate.name === name);
  if (tool === undefined) return toolError(`there is no tool '${name}'; the tools are ${TOOLS.map((t) => t.name).join(', ')}`);
  let args: unknown;
  try {
    args = JSON.parse(argumentsJson);
  } catch (err) {
    return toolError(`the arguments of ${name} are not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  try {
    return await tool.run(args, ctx);
  } catch (err) {
    // A refusal or a file-system failure is the call's outcome; anything else is a bug and stays one.
    if (!isStagegateError(err) && !isSystemError(err)) throw err;
    ctx.log.debug({ tool: name, err }, 'tool call failed');
    return toolError(err.message);
  }
}

function isSystemError(err: unknown): err is Error & { code: string } {
  return err instanceof Error && 'code' in err && typeof err.code === 'string';
}

/**
 * The JSON schema OpenAI strict function calling accepts: every property required (optional
 * ones are nullable in the zod schemas), `additionalProperties: false`, and none of the
 * keywords strict mode refuses (string lengths; zod's safe-integer bounds are noise). The zod
 * schema still checks them when the call is parsed.
 */
function strictParameters(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: 'draft-7', io: 'output' });
  const { $schema: _ignored, ...parameters } = stripUnsupported(json);
  return parameters;
}

function stripUnsupported(node: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    // `default` too: strict mode refuses it, and a nullable field's null already says "none".
    if (key === 'minLength' || key === 'maxLength' || key === 'default') continue;
    if ((key === 'maximum' && value === Number.MAX_SAFE_INTEGER) || (key === 'minimum' && value === Number.MIN_SAFE_INTEGER)) continue;
    // Under `properties` the keys are field names, not keywords: only their schemas are walked.
    result[key] = key === 'properties' && isRecord(value) ? mapValues(value, stripValue) : stripValue(value);
  }
  return result;
}

function stripValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripValue);
  return isRecord(value) ? stripUnsupported(value) : value;
}

function mapValues(record: Record<string, unknown>, map: (value: unknown) => unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, map(value)]));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
