/**
 * The coder's agent loop: ask the model for a turn, run the tool calls it made, append the
 * outputs, repeat — until `finish` is accepted, a limit is reached, or a command needs a
 * person's approval. The loop never touches git or the bus: the worker commits and publishes.
 *
 * Requests are cache-stable: instructions and tool definitions come first and identical every
 * turn, then the task message, then the conversation, only ever appended to (transcript.ts).
 * Compaction is the one exception, and it keeps instructions, tools and task message.
 *
 * Within a turn, calls run in the order the model made them; `finish` is judged after the
 * others (a model may patch and finish in one turn), and a call that needs approval ends the
 * loop at once, the calls after it not run.
 */
import { performance } from 'node:perf_hooks';
import { Usage, type ReviewAnswer } from '../../../core/bus/messages.js';
import type { ModelPrice } from '../../../core/config.js';
import { StagegateError, isStagegateError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import { functionCallOutput, isAssistantMessage, isFunctionCall, userMessage, type FunctionCall } from '../../../core/model/conversation.js';
import type { TurnClient } from '../../../core/model/turn.js';
import { emptyUsage } from '../../../core/task-record.js';
import { addUsage } from '../../../core/task-record.js';
import { TokenEstimator, compactTranscript, compactionThreshold, type CompactionSettings } from './compaction.js';
import { describeToolCall } from './describe-call.js';
import { createLimitCheck, type Limits } from './limits.js';
import type { ToolDefinition, ToolOutcome } from './tool-types.js';
import { appendToTurn, appendTurn, startTranscript, type Transcript } from './transcript.js';

export type FinishVerdict = { accepted: true } | { accepted: false; output: string };

export interface TurnStats {
  turn: number;
  /** Characters of instructions, tools and input sent. */
  requestChars: number;
  modelMs: number;
  toolMs: number;
  totalMs: number;
}

export interface CoderLoopInput {
  taskId: string;
  turnClient: TurnClient;
  instructions: string;
  tools: readonly ToolDefinition[];
  /** The first user message (context.ts), fixed for the job. */
  taskMessage: string;
  executeTool(call: FunctionCall): Promise<ToolOutcome>;
  /** Judges a `finish` (runs the tests); a refusal's output goes back to the model, which goes on. */
  verifyFinish(summary: string): Promise<FinishVerdict>;
  limits: Limits;
  price: ModelPrice | undefined;
  compaction: CompactionSettings;
  progress(message: string, usage?: Usage): Promise<void>;
  log: Logger;
  /** Milliseconds; the wall-clock limit's clock. Default Date.now. */
  clock?: () => number;
  onTurn?(stats: TurnStats): void;
}

export type CoderLoopEnd =
  | { kind: 'finished'; summary: string; answers?: ReviewAnswer[] }
  | { kind: 'limit'; reason: string }
  | { kind: 'needs-approval'; command: string; pattern: string };

export type CoderLoopResult = CoderLoopEnd & {
  usage: Usage;
  turns: number;
  /** `finish` calls judged, the accepted one included. */
  finishAttempts: number;
  /** The model's most recent text, for notes when the loop stops early. */
  lastAssistantText: string;
  compactions: number;
};

export const NO_TOOL_CALL_NUDGE =
  'You answered without calling a tool. Keep working with the tools, and call finish when the change is complete and checked.';
export const CUT_OFF_NUDGE = 'Your reply was cut off before it ended. Continue in smaller steps (shorter patches, fewer calls per turn).';

export async function runCoderLoop(input: CoderLoopInput): Promise<CoderLoopResult> {
  const { turnClient, taskId, instructions, tools, log } = input;
  const limits = createLimitCheck(input.limits, input.price, input.clock ?? Date.now);
  if (input.limits.maxCostUsd !== undefined && input.price === undefined) {
    log.warn({ model: turnClient.model }, 'coder.maxCostUsd is set but model.pricing has no price for this model: the cost limit is not checked');
  }
  const estimator = new TokenEstimator();
  const threshold = compactionThreshold(input.compaction);
  const fixedChars = JSON.stringify(instructions).length + JSON.stringify(tools).length;
  const taskMessage = userMessage(input.taskMessage);
  let transcript: Transcript = startTranscript([taskMessage]);
  let usage = emptyUsage();
  let turns = 0;
  let finishAttempts = 0;
  let compactions = 0;
  let lastAssistantText = '';
  const end = (result: CoderLoopEnd): CoderLoopResult => ({ ...result, usage, turns, finishAttempts, lastAssistantText, compactions });

  try {
    for (;;) {
      const reason = limits.reached({ turns, usage });
      if (reason !== undefined) {
        log.info({ reason, turns, usage }, 'coder loop stopped at a limit');
        return end({ kind: 'limit', reason });
      }
      if (transcript.turns.length > 0 && estimator.estimate(fixedChars + transcript.chars) >= threshold) {
        const compaction = await compactTranscript({ turnClient, taskId, instructions, tools, taskMessage, transcript, fixedChars, estimator, settings: input.compaction });
        transcript = compaction.transcript;
        usage = addUsage(usage, compaction.usage);
        compactions += 1;
        const { beforeTokens, afterTokens, summarizedTurns, keptTurns, modelSummary } = compaction;
        log.info({ beforeTokens, afterTokens, threshold, summarizedTurns, keptTurns, modelSummary }, 'conversation compacted');
        await input.progress(`compacted the conversation: ~${beforeTokens} → ~${afterTokens} tokens (${keptTurns} recent turns kept)`, compaction.usage);
      }

      const started = performance.now();
      const requestChars = fixedChars + transcript.chars;
      const reply = await turnClient.runTurn({ taskId, instructions, tools, input: transcript.items });
      const modelMs = performance.now() - started;
      turns += 1;
      usage = addUsage(usage, reply.usage);
      estimator.calibrate(requestChars, reply.usage.inputTokens);
      appendTurn(transcript, reply.items);
      const text = reply.items.filter(isAssistantMessage).map((m) => m.content).join('\n').trim();
      if (text !== '') lastAssistantText = text;

      const calls = reply.items.filter(isFunctionCall);
      const lines: string[] = [];
      let toolMs = 0;
      let ended: CoderLoopEnd | undefined;
      if (calls.length === 0) {
        appendToTurn(transcript, userMessage(reply.incomplete === null ? NO_TOOL_CALL_NUDGE : CUT_OFF_NUDGE));
        lines.push(reply.incomplete === null ? 'no tool call' : `reply cut off (${reply.incomplete})`);
      } else {
        const toolsStarted = performance.now();
        ended = await runCalls(calls, input, transcript, lines, () => (finishAttempts += 1));
        toolMs = performance.now() - toolsStarted;
      }
      await input.progress(`turn ${turns}: ${lines.join('; ')}`, reply.usage);
      input.onTurn?.({ turn: turns, requestChars, modelMs, toolMs, totalMs: performance.now() - started });
      if (ended !== undefined) return end(ended);
    }
  } catch (err) {
    throw withUsage(err, usage);
  }
}

/** Runs one turn's calls and appends their outputs; says how the loop ends, if it does. */
async function runCalls(
  calls: FunctionCall[],
  input: CoderLoopInput,
  transcript: Transcript,
  lines: string[],
  countFinish: () => void,
): Promise<CoderLoopEnd | undefined> {
  const outputs = new Map<string, string>();
  const finishes: Array<{ call: FunctionCall; summary: string; answers?: ReviewAnswer[] | undefined }> = [];
  for (const call of calls) {
    const outcome = await input.executeTool(call);
    lines.push(describeToolCall(call, outcome));
    if (outcome.control?.kind === 'needs-approval') {
      return { kind: 'needs-approval', command: outcome.control.command, pattern: outcome.control.pattern };
    }
    if (outcome.control?.kind === 'finish') finishes.push({ call, summary: outcome.control.summary, answers: outcome.control.answers });
    else outputs.set(call.call_id, outcome.output);
  }
  let finished: CoderLoopEnd | undefined;
  for (const { call, summary, answers } of finishes) {
    if (finished !== undefined) {
      outputs.set(call.call_id, 'ignored: finish was already called in this turn');
      continue;
    }
    countFinish();
    const verdict = await input.verifyFinish(summary);
    if (verdict.accepted) {
      finished = { kind: 'finished', summary, ...(answers === undefined ? {} : { answers }) };
      outputs.set(call.call_id, 'finished');
    } else {
      outputs.set(call.call_id, verdict.output);
      lines.push(`finish refused: ${verdict.output.split('\n', 1)[0] ?? ''}`);
    }
  }
  // Outputs go in the order of the calls, whatever order they were decided in.
  for (const call of calls) appendToTurn(transcript, functionCallOutput(call.call_id, outputs.get(call.call_id) ?? ''));
  return finished;
}

/** A failure mid-loop carries what the loop had spent, so the task's usage stays complete. */
function withUsage(err: unknown, before: Usage): unknown {
  if (!isStagegateError(err)) return err;
  const spent = Usage.safeParse(err.details?.usage).data ?? emptyUsage();
  return new StagegateError(err.code, err.message, {
    cause: err.cause,
    ...(err.taskId === undefined ? {} : { taskId: err.taskId }),
    details: { ...err.details, usage: addUsage(before, spent) },
  });
}
