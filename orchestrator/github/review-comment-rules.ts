/**
 * Which pull request review comments go to the coder: pure rules over GitHub's review comments.
 * A comment counts when it starts a thread (a reply in a thread is conversation, not a new
 * request), is written by a person or by a bot on the `reviewBots` allow-list (other bots, ours
 * included, are ignored), has text, and does not carry the skip marker, with which a reviewer
 * says a comment is for the humans only. Who may steer the task at all (the command permission)
 * is checked by the caller, once per reviewer.
 */
import { z } from 'zod';
import type { CoderReviewComment } from '../../core/bus/messages.js';
import { isBot } from './command-parse.js';
import { GitHubUser } from './payloads.js';

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

/** Why the comment does not go to the coder; undefined when it does. */
export function whyNotForCoder(comment: GitHubReviewComment, rules: ReviewCommentRules): string | undefined {
  if (comment.in_reply_to_id != null) return 'a reply in a thread';
  if (comment.user === null) return 'a comment by a deleted account';
  if (isIgnoredBot(comment.user, rules)) return 'a comment by a bot';
  if (comment.body.trim() === '' || comment.path === '') return 'an empty comment';
  if (comment.body.toLowerCase().includes(rules.skipMarker.toLowerCase())) return `a comment marked ${rules.skipMarker}`;
  return undefined;
}

/** The comment as the coder reads it, with the id its answer names. */
export function asCoderComment(comment: GitHubReviewComment): CoderReviewComment {
  return { file: comment.path, line: comment.line ?? comment.original_line ?? null, body: comment.body, commentId: comment.id };
}
