/**
 * Auto-compaction: when the next request would pass a share of the model's context window, the
 * model writes a summary of the work so far for its successor, and the conversation restarts
 * as task message + summary + the most recent turns verbatim. The summary request is the
 * current conversation plus one question, so the provider's prefix cache serves nearly all of it.
 *
 * Sizes are estimated from characters, with a tokens-per-character ratio calibrated on every
 * reply's reported input tokens; the compacted transcript keeps as many recent turns (up to
 * `keepRecentTurns`) as fit under the threshold.
 */
import type { Usage } from '../../../core/bus/messages.js';
import { isAssistantMessage, userMessage, type ConversationItem } from '../../../core/model/conversation.js';
import type { TurnClient } from '../../../core/model/turn.js';
import { emptyUsage } from '../../../core/task-record.js';
import type { ToolDefinition } from './tool-types.js';
import { startTranscript, type Transcript } from './transcript.js';

export interface CompactionSettings {
  contextWindowTokens: number;
  /** Share of the window at which to compact, in (0, 1). */
  compactAt: number;
  keepRecentTurns: number;
}

export const COMPACTION_REQUEST = [
  'Your context is nearly full. Stop working for a moment and write a handover note for the engineer who continues this task',
  '(the conversation will be replaced by the task, your note, and the last few turns).',
  'Write plain text, no tool calls. Include: what is done (files changed and how), what you found out (causes of failures,',
  'facts about the code), the plan steps still open, the exact next step, and anything that did not work so it is not retried.',
].join(' ');

export const SUMMARY_PREAMBLE = 'The earlier part of this conversation was compacted. Handover note written before the compaction:';

/** Characters → tokens, learning the ratio from what the endpoint reports. */
export class TokenEstimator {
  private tokensPerChar = 0.25;

  estimate(chars: number): number {
    return Math.ceil(chars * this.tokensPerChar);
  }

  /** `chars` of a request the endpoint said was `inputTokens` long. */
  calibrate(chars: number, inputTokens: number): void {
    if (chars > 0 && inputTokens > 0) this.tokensPerChar = inputTokens / chars;
  }
}

export function compactionThreshold(settings: CompactionSettings): number {
  return Math.floor(settings.contextWindowTokens * settings.compactAt);
}

export interface CompactionInput {
  turnClient: TurnClient;
  taskId: string;
  instructions: string;
  tools: readonly ToolDefinition[];
  /** The head's first item: the task message, which every transcript starts with. */
  taskMessage: ConversationItem;
  transcript: Transcript;
  /** Characters of the instructions and tools, sent before the transcript. */
  fixedChars: number;
  estimator: TokenEstimator;
  settings: CompactionSettings;
}

export interface Compaction {
  transcript: Transcript;
  usage: Usage;
  beforeTokens: number;
  afterTokens: number;
  summarizedTurns: number;
  keptTurns: number;
  /** False when the summary was built from the tool calls (the model gave none, or it would not fit). */
  modelSummary: boolean;
}

export async function compactTranscript(input: CompactionInput): Promise<Compaction> {
  const { transcript, estimator, settings, fixedChars } = input;
  const beforeTokens = estimator.estimate(fixedChars + transcript.chars);
  const request = userMessage(COMPACTION_REQUEST);
  let summary = '';
  let usage = emptyUsage();
  // The question itself must fit; past the window, fall back to a summary of the calls made.
  if (estimator.estimate(fixedChars + transcript.chars + COMPACTION_REQUEST.length) < settings.contextWindowTokens) {
    const reply = await input.turnClient.runTurn({
      taskId: input.taskId,
      instructions: input.instructions,
      tools: input.tools,
      input: [...transcript.items, request],
      toolChoice: 'none',
    });
    usage = reply.usage;
    summary = reply.items
      .filter(isAssistantMessage)
      .map((m) => m.content)
      .join('\n')
      .trim();
  }
  const modelSummary = summary !== '';
  if (!modelSummary) summary = mechanicalSummary(transcript.turns);

  const head = [input.taskMessage, userMessage(`${SUMMARY_PREAMBLE}\n\n${summary}`)];
  const threshold = compactionThreshold(settings);
  let kept = Math.min(settings.keepRecentTurns, Math.max(0, transcript.turns.length - 1));
  let next = startTranscript(head, transcript.turns.slice(transcript.turns.length - kept));
  while (kept > 0 && estimator.estimate(fixedChars + next.chars) >= threshold) {
    kept -= 1;
    next = startTranscript(head, transcript.turns.slice(transcript.turns.length - kept));
  }
  return {
    transcript: next,
    usage,
    beforeTokens,
    afterTokens: estimator.estimate(fixedChars + next.chars),
    summarizedTurns: transcript.turns.length - kept,
    keptTurns: kept,
    modelSummary,
  };
}

const MECHANICAL_SUMMARY_CHARS = 8_000;

/** A summary without the model: each call made and the first line of what it returned. */
export function mechanicalSummary(turns: readonly (readonly ConversationItem[])[]): string {
  const outputs = new Map<string, string>();
  for (const item of turns.flat()) if (item.type === 'function_call_output') outputs.set(item.call_id, item.output);
  const lines: string[] = ['Tool calls made so far (oldest first):'];
  for (const item of turns.flat()) {
    if (item.type !== 'function_call') continue;
    const result = (outputs.get(item.call_id) ?? '').split('\n', 1)[0] ?? '';
    lines.push(`- ${item.name} ${clip(item.arguments, 160)} → ${clip(result, 120)}`);
  }
  const text = lines.join('\n');
  return text.length <= MECHANICAL_SUMMARY_CHARS ? text : `…\n${text.slice(text.length - MECHANICAL_SUMMARY_CHARS)}`;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
