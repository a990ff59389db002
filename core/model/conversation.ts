/**
 * The items an agent loop's conversation is made of, in the Responses API's own input shapes
 * (so the Responses wire sends them as they are and the chat wire maps them). Each item is
 * built once and never changed afterwards: a conversation is appended to, so every request
 * begins with the bytes of the one before it.
 *
 * Server-side ids are left out (`store: false` keeps nothing to refer to), except a reasoning
 * item's, which travels with its `encrypted_content` as the API expects.
 */
import { z } from 'zod';

export const UserMessage = z.object({ type: z.literal('message'), role: z.literal('user'), content: z.string() });
export type UserMessage = z.infer<typeof UserMessage>;

export const AssistantMessage = z.object({ type: z.literal('message'), role: z.literal('assistant'), content: z.string() });
export type AssistantMessage = z.infer<typeof AssistantMessage>;

export const ReasoningItem = z.object({
  type: z.literal('reasoning'),
  id: z.string().min(1),
  summary: z.array(z.object({ type: z.literal('summary_text'), text: z.string() })),
  /** What lets a stateless request carry the model's reasoning into the next turn. */
  encrypted_content: z.string().min(1),
});
export type ReasoningItem = z.infer<typeof ReasoningItem>;

export const FunctionCall = z.object({
  type: z.literal('function_call'),
  call_id: z.string().min(1),
  name: z.string().min(1),
  /** JSON text as the model wrote it; the tool parses it (and says so when it is not JSON). */
  arguments: z.string(),
});
export type FunctionCall = z.infer<typeof FunctionCall>;

export const FunctionCallOutput = z.object({
  type: z.literal('function_call_output'),
  call_id: z.string().min(1),
  output: z.string(),
});
export type FunctionCallOutput = z.infer<typeof FunctionCallOutput>;

export const ConversationItem = z.union([UserMessage, AssistantMessage, ReasoningItem, FunctionCall, FunctionCallOutput]);
export type ConversationItem = z.infer<typeof ConversationItem>;

/** A function tool as the Responses API takes it; the chat wire wraps it in `function`. */
export interface FunctionTool {
  type: 'function';
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  strict: boolean;
}

export function userMessage(content: string): UserMessage {
  return { type: 'message', role: 'user', content };
}

export function functionCallOutput(callId: string, output: string): FunctionCallOutput {
  return { type: 'function_call_output', call_id: callId, output };
}

export function isFunctionCall(item: ConversationItem): item is FunctionCall {
  return item.type === 'function_call';
}

export function isAssistantMessage(item: ConversationItem): item is AssistantMessage {
  return item.type === 'message' && item.role === 'assistant';
}
