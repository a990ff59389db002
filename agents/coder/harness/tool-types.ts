/**
 * The contract between the coder's agent loop and its tools. The loop sends the definitions
 * to the model (byte-identical every turn), runs each call through `executeToolCall`, and
 * sends back `output`. A tool never throws for a bad call: the model gets an error it can read.
 */
import type { ReviewAnswer } from '../../../core/bus/messages.js';
import type { Logger } from '../../../core/log.js';
import type { Sandbox } from '../../../core/sandbox/sandbox.js';

export interface ToolDefinition {
  type: 'function';
  name: string;
  description: string;
  /** Strict JSON schema of the arguments, derived from the tool's zod schema. */
  parameters: Record<string, unknown>;
  strict: boolean;
}

export interface PlanStep {
  step: string;
  status: 'pending' | 'in_progress' | 'completed';
}

export interface ToolContext {
  /** The task's worktree: every path a tool touches resolves inside it. */
  worktree: string;
  sandbox: Sandbox;
  log: Logger;
  shellTimeoutMs: number;
  /** Characters of command output returned; past it the middle is elided. */
  outputLimit: number;
  /** Command patterns that need a human's approval before they run. */
  requireApproval: readonly string[];
  /** Commands a human already approved for this task. */
  approvedCommands: readonly string[];
  onPlanUpdate(steps: PlanStep[]): Promise<void>;
}

/** What a tool call asks of the loop beyond its output. */
export type ToolControl =
  | { kind: 'finish'; summary: string; answers?: ReviewAnswer[] }
  | { kind: 'needs-approval'; command: string; pattern: string };

export interface ToolOutcome {
  output: string;
  isError: boolean;
  control?: ToolControl;
}
