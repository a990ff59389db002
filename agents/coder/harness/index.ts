/** The coder's agent loop and what it is made of; the worker and the benchmark import from here. */
export { runCoderLoop } from './loop.js';
export type { CoderLoopEnd, CoderLoopInput, CoderLoopResult, FinishVerdict, TurnStats } from './loop.js';
export { finishChecks, renderChecks, renderTaskMessage } from './context.js';
export type { TaskContextInput } from './context.js';
export { capLimits } from './limits.js';
export type { Limits } from './limits.js';
export type { CompactionSettings } from './compaction.js';
export type { PlanStep, ToolContext, ToolDefinition, ToolOutcome } from './tool-types.js';
