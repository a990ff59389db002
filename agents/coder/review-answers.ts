/**
 * The answers a finished coder job reports: exactly one per review comment it was given with an
 * id, in the order given. The model's answers are untrusted: one naming an id the job did not
 * carry is dropped (serve must never reply in a thread it was not asked about), a second answer
 * for the same id is dropped, and a comment the model did not answer is reported as declined,
 * so every person still gets a reply.
 */
import type { CoderReviewComment, ReviewAnswer } from '../../core/bus/messages.js';

export const UNANSWERED_REASON = 'the coder finished without answering this comment; a person should look at it';

/** Undefined when the job had no comments with ids (nothing to answer). */
export function answersFor(comments: readonly CoderReviewComment[], given: readonly ReviewAnswer[]): ReviewAnswer[] | undefined {
  const ids = [...new Set(comments.flatMap((c) => (c.commentId === undefined ? [] : [c.commentId])))];
  if (ids.length === 0) return undefined;
  const byId = new Map<number, ReviewAnswer>();
  for (const answer of given) if (ids.includes(answer.commentId) && !byId.has(answer.commentId)) byId.set(answer.commentId, answer);
  return ids.map((commentId) => byId.get(commentId) ?? { commentId, status: 'declined', reason: UNANSWERED_REASON });
}
