/**
 * The coder's conversation, held as the list sent to the model and only ever appended to:
 * each request's input begins with the previous request's input, item for item, so a prefix
 * cache serves everything but the newest turn. Only compaction builds a new transcript.
 *
 * `head` is the task message (and, after a compaction, the summary); each turn is the model's
 * items followed by the loop's answers to them (tool outputs, a nudge). Sizes are kept as the
 * characters of each item's JSON, counted once when the item is added, so estimating the next
 * request costs nothing per turn.
 */
import type { ConversationItem } from '../../../core/model/conversation.js';

export interface Transcript {
  readonly head: readonly ConversationItem[];
  readonly turns: ConversationItem[][];
  /** head + every turn, flattened: the request's `input`. Appended in place, never rewritten. */
  readonly items: ConversationItem[];
  /** Characters of the JSON of `items`. */
  chars: number;
}

export function startTranscript(head: readonly ConversationItem[], turns: readonly (readonly ConversationItem[])[] = []): Transcript {
  const transcript: Transcript = { head: [...head], turns: [], items: [], chars: 0 };
  for (const item of head) push(transcript, item);
  for (const turn of turns) {
    transcript.turns.push([]);
    for (const item of turn) appendToTurn(transcript, item);
  }
  return transcript;
}

/** Starts a turn with the model's reply. */
export function appendTurn(transcript: Transcript, modelItems: readonly ConversationItem[]): void {
  transcript.turns.push([]);
  for (const item of modelItems) appendToTurn(transcript, item);
}

/** Adds the loop's answer (a tool output, a note) to the current turn. */
export function appendToTurn(transcript: Transcript, item: ConversationItem): void {
  const turn = transcript.turns.at(-1);
  if (turn === undefined) throw new Error('appendToTurn before the first turn');
  turn.push(item);
  push(transcript, item);
}

export function itemChars(item: ConversationItem): number {
  return JSON.stringify(item).length;
}

function push(transcript: Transcript, item: ConversationItem): void {
  transcript.items.push(item);
  transcript.chars += itemChars(item) + 1;
}
