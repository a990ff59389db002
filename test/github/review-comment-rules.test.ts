/**
 * The pure parts of answering review threads: which review comments go to the coder, the
 * answers a coder job reports (one per comment it was given, never one for another id), and
 * the text of a reply.
 */
import { describe, expect, it } from 'vitest';
import type { CoderReviewComment } from '../../core/bus/messages.js';
import { UNANSWERED_REASON, answersFor } from '../../agents/coder/review-answers.js';
import { asCoderComment, whyNotForCoder, type GitHubReviewComment, type ReviewCommentRules } from '../../orchestrator/github/review-comment-rules.js';
import { threadReplyMarker } from '../../orchestrator/github/thread-reply-marker.js';
import { threadReplyBody } from '../../orchestrator/github/thread-replies.js';

const rules: ReviewCommentRules = { botLogin: 'stagegate[bot]', reviewBots: ['Lint-Helper[bot]'], skipMarker: '[skip stagegate]' };
const comment = (over: Partial<GitHubReviewComment> = {}): GitHubReviewComment => ({
  id: 7,
  pull_request_review_id: 70,
  path: 'src/a.ts',
  line: 3,
  body: 'Rename this.',
  user: { login: 'wendy', type: 'User' },
  ...over,
});

describe('which review comments go to the coder', () => {
  it.each<[string, Partial<GitHubReviewComment>, string | undefined]>([
    ["a person's comment", {}, undefined],
    ['an allow-listed bot (any case)', { user: { login: 'lint-helper[bot]', type: 'Bot' } }, undefined],
    ['another bot', { user: { login: 'dependabot[bot]', type: 'Bot' } }, 'a comment by a bot'],
    ['our own bot, by its configured login', { user: { login: 'stagegate[bot]', type: 'Bot' } }, 'a comment by a bot'],
    ['a reply in a thread, before its thread is known', { in_reply_to_id: 6 }, undefined],
    ["Stagegate's own reply, whoever posted it", { in_reply_to_id: 6, user: { login: 'wendy', type: 'User' }, body: `${threadReplyMarker(6)}\nAddressed in abc.` }, 'a reply by Stagegate'],
    ['the skip marker, in any case', { body: 'For Rita only [Skip Stagegate]' }, 'a comment marked [skip stagegate]'],
    ['an empty body', { body: '  ' }, 'an empty comment'],
    ['a deleted account', { user: null }, 'a comment by a deleted account'],
  ])('%s', (_name, over, why) => {
    expect(whyNotForCoder(comment(over), rules)).toBe(why);
  });

  it('takes a reply in a thread Stagegate declined or never answered, and not one in a thread it addressed or one marked to skip', () => {
    const first = comment({ id: 6, body: 'Use single quotes.' });
    const reply = comment({ id: 9, in_reply_to_id: 6, body: 'Please do it anyway.' });

    expect(whyNotForCoder(reply, rules, { earlier: [first] })).toBeUndefined();
    expect(whyNotForCoder(reply, rules, { earlier: [first], lastAnswer: 'declined' })).toBeUndefined();
    expect(whyNotForCoder(reply, rules, { earlier: [first], lastAnswer: 'addressed' })).toBe('a reply in a thread Stagegate addressed');
    expect(whyNotForCoder(reply, rules, { earlier: [comment({ id: 6, body: 'Rita? [skip stagegate]' })] })).toBe('a reply in a thread marked [skip stagegate]');
  });

  it('gives the coder a reply with the thread before it, our reply without its marker', () => {
    const first = comment({ id: 6, body: 'Use single\nquotes.' });
    const ours = comment({ id: 8, in_reply_to_id: 6, user: { login: 'stagegate[bot]', type: 'Bot' }, body: `${threadReplyMarker(6)}\nNot changed: the template interpolates.` });
    const reply = comment({ id: 9, in_reply_to_id: 6, body: 'Please do it anyway.' });

    expect(asCoderComment(reply, [first, ours])).toEqual({
      file: 'src/a.ts',
      line: 3,
      commentId: 9,
      body: 'Please do it anyway.\n\n(A reply in a thread; earlier in it:\n- wendy: Use single quotes.\n- stagegate[bot]: Not changed: the template interpolates.)',
    });
    expect(asCoderComment(first)).toEqual({ file: 'src/a.ts', line: 3, commentId: 6, body: 'Use single\nquotes.' });
  });

  it('honours a configured marker instead of the default', () => {
    const custom = { ...rules, skipMarker: 'nb:' };

    expect(whyNotForCoder(comment({ body: 'nb: just thinking aloud' }), custom)).toBe('a comment marked nb:');
    expect(whyNotForCoder(comment({ body: 'x [skip stagegate]' }), custom)).toBeUndefined();
  });
});

describe('the answers a coder job reports', () => {
  const given: CoderReviewComment[] = [
    { file: 'a.ts', line: 1, body: 'one', commentId: 11 },
    { file: 'a.ts', line: 2, body: 'from the reviewer agent' },
    { file: 'a.ts', line: 3, body: 'two', commentId: 12 },
  ];

  it('keeps one answer per comment given, in the order given, and drops ids it was not given', () => {
    const answers = answersFor(given, [
      { commentId: 12, status: 'declined', reason: 'out of scope' },
      { commentId: 99, status: 'addressed', reason: '' },
      { commentId: 11, status: 'addressed', reason: 'renamed' },
      { commentId: 11, status: 'declined', reason: 'second thoughts' },
    ]);

    expect(answers).toEqual([
      { commentId: 11, status: 'addressed', reason: 'renamed' },
      { commentId: 12, status: 'declined', reason: 'out of scope' },
    ]);
  });

  it('reports a comment the model did not answer as declined, so the person still hears back', () => {
    expect(answersFor(given, [{ commentId: 11, status: 'addressed', reason: '' }])).toEqual([
      { commentId: 11, status: 'addressed', reason: '' },
      { commentId: 12, status: 'declined', reason: UNANSWERED_REASON },
    ]);
  });

  it('reports no answers for a job without comment ids, whatever the model said', () => {
    expect(answersFor([{ file: 'a.ts', line: 1, body: 'x' }], [{ commentId: 1, status: 'addressed', reason: '' }])).toBeUndefined();
  });
});

describe('the reply in a thread', () => {
  it('names the commit for an addressed comment, after the marker of the comment it answers', () => {
    expect(threadReplyBody({ commentId: 5, status: 'addressed', reason: '' }, 'abc1234def')).toBe(`${threadReplyMarker(5)}\nAddressed in abc1234def.`);
    expect(threadReplyBody({ commentId: 5, status: 'addressed', reason: 'renamed to total' }, 'abc1234def')).toBe(`${threadReplyMarker(5)}\nAddressed in abc1234def: renamed to total`);
  });

  it('gives the reason for a declined one, on one line and bounded', () => {
    const body = threadReplyBody({ commentId: 6, status: 'declined', reason: `not in\nscope ${'x'.repeat(2_000)}` }, 'abc1234');

    expect(body.startsWith(`${threadReplyMarker(6)}\nNot changed: not in scope x`)).toBe(true);
    expect(body.split('\n')).toHaveLength(2);
    expect(body.length).toBeLessThan(1_100);
    expect(body).not.toContain('abc1234');
  });
});
