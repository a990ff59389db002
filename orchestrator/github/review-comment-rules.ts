/**
 * Which pull request review comments go to the coder: pure rules over GitHub's review comments.
 * A comment counts when it is written by a person or by a bot on the `reviewBots` allow-list
 * (other bots, and Stagegate's own replies whoever posted them, are ignored), has text, and does
 * not carry the skip marker, with which a reviewer says a comment is for the humans only. A reply
 * in a thread counts too (a person pushing back on a declined comment, or asking for more), with
 * the thread so far for context, except in a thread marked with the skip marker or one Stagegate
 * last answered as addressed (a "thanks" there is conversation; a new comment asks for more).
 * Who may steer the task at all (the command permission) is checked by the caller, once per reviewer.
 */
import { z } from 'zod';
import type { CoderReviewComment } from '../../core/bus/messages.js';
import { isBot } from './command-parse.js';
import { GitHubUser } from './payloads.js';
import { answeredBy, withoutReplyMarker } from './thread-reply-marker.js';

export interface ReviewCommentRules {
  botLogin?: string | undefined;
  reviewBots: readonly string[];
  skipMarker: string;
}

/** A review comment as GitHub's REST API and the `pull_request_review_comment` webhook give it. */
export const GitHubReviewComment = z.object({
  id: z.number().int().positive(),
  pull_request_review_id: z.number().nullable(),
  in_reply_to_id: z.number().int().positive().nullish(),
  path: z.string(),
  line: z.number().int().positive().nullish(),
  original_line: z.number().int().positive().nullish(),
  body: z.string(),
  /** Null for a deleted account. */
  user: GitHubUser.nullable(),
});
export type GitHubReviewComment = z.infer<typeof GitHubReviewComment>;

export function isAllowListedBot(login: string, rules: Pick<ReviewCommentRules, 'reviewBots'>): boolean {
  const wanted = login.toLowerCase();
  return rules.reviewBots.some((bot) => bot.toLowerCase() === wanted);
}

/** A bot Stagegate does not take review comments from. */
export function isIgnoredBot(user: GitHubUser, rules: ReviewCommentRules): boolean {
  return isBot(user, rules.botLogin) && !isAllowListedBot(user.login, rules);
}

/** What is known of the thread a reply is in; a caller without it (a webhook's first look) passes none. */
export interface ThreadContext {
  /** The comments before this one, the thread's first comment first. */
  earlier: readonly GitHubReviewComment[];
  /** Stagegate's latest answer in the thread, if it gave one. */
  lastAnswer?: 'addressed' | 'declined' | undefined;
}

/** Why the comment does not go to the coder; undefined when it does. */
export function whyNotForCoder(comment: GitHubReviewComment, rules: ReviewCommentRules, thread?: ThreadContext): string | undefined {
  if (answeredBy(comment.body) !== undefined) return 'a reply by Stagegate';
  if (comment.user === null) return 'a comment by a deleted account';
  if (isIgnoredBot(comment.user, rules)) return 'a comment by a bot';
  if (comment.body.trim() === '' || comment.path === '') return 'an empty comment';
  if (hasSkipMarker(comment.body, rules)) return `a comment marked ${rules.skipMarker}`;
  if (comment.in_reply_to_id == null || thread === undefined) return undefined;
  const first = thread.earlier[0];
  if (first !== undefined && hasSkipMarker(first.body, rules)) return `a reply in a thread marked ${rules.skipMarker}`;
  if (thread.lastAnswer === 'addressed') return 'a reply in a thread Stagegate addressed';
  return undefined;
}

function hasSkipMarker(body: string, rules: Pick<ReviewCommentRules, 'skipMarker'>): boolean {
  return body.toLowerCase().includes(rules.skipMarker.toLowerCase());
}

/** Characters of each earlier comment of a thread the coder is shown with a reply. */
const EARLIER_KEPT = 500;

/** The comment as the coder reads it, with the id its answer names; a reply, with the thread before it. */
export function asCoderComment(comment: GitHubReviewComment, earlier: readonly GitHubReviewComment[] = []): CoderReviewComment {
  const context = earlier.map((c) => `- ${c.user?.login ?? 'a deleted account'}: ${withoutReplyMarker(c.body).replace(/\s+/g, ' ').trim().slice(0, EARLIER_KEPT)}`);
  const body = context.length === 0 ? comment.body : `${comment.body}\n\n(A reply in a thread; earlier in it:\n${context.join('\n')})`;
  return { file: comment.path, line: comment.line ?? comment.original_line ?? null, body, commentId: comment.id };
}

