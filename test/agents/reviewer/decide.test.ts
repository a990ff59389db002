/**
 * The reviewer's pure parts: its reply schema (risk required for the model, `medium` when an
 * older script leaves it out), the verdict it publishes, and the change size it measures.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zodTextFormat } from 'openai/helpers/zod';
import { afterAll, describe, expect, it } from 'vitest';
import { ReviewApproved, ReviewChangesRequested, type Usage, type Verdict } from '../../../core/bus/messages.js';
import { NUMSTAT_ARGS, parseNumstat } from '../../../core/git/numstat.js';
import { decideReview } from '../../../agents/reviewer/decide.js';
import { ReviewerReply } from '../../../agents/reviewer/output.js';

const usage: Usage = { calls: 1, inputTokens: 10, cachedTokens: 0, outputTokens: 5, reasoningTokens: 0 };
const envelope = { taskId: 't-1', msgId: 'm', sentAt: '2025-03-01T10:00:00.000Z', jobId: 't-1:review:1' };

describe('reviewer reply schema', () => {
  it('requires risk in the strict JSON schema sent to the model', () => {
    const format = zodTextFormat(ReviewerReply, 'verdict');
    expect(format.schema).toMatchObject({ required: ['decision', 'summary', 'comments', 'risk'], additionalProperties: false });
    expect(JSON.stringify(format.schema)).not.toContain('"default"');
  });

  it('keeps every field of a comment required: the ids of people\'s comments are not the model\'s to write', () => {
    const format = zodTextFormat(ReviewerReply, 'verdict');
    expect(JSON.stringify(format.schema)).not.toContain('commentId');
    expect(format.schema).toMatchObject({ properties: { comments: { items: { required: ['file', 'line', 'body'], additionalProperties: false } } } });
  });

  it('reads a reply without risk, from a script written before risk levels, as medium', () => {
    expect(ReviewerReply.parse({ decision: 'approve', summary: 'ok', comments: [] })).toEqual({
      decision: 'approve', summary: 'ok', comments: [], risk: 'medium',
    });
  });

  it('keeps the risk the model gave and refuses one that is not a level', () => {
    expect(ReviewerReply.parse({ decision: 'approve', summary: 'ok', comments: [], risk: 'low' }).risk).toBe('low');
    expect(ReviewerReply.safeParse({ decision: 'approve', summary: 'ok', comments: [], risk: 'none' }).success).toBe(false);
  });
});

describe('decideReview', () => {
  const approve: Verdict = { decision: 'approve', summary: 'fine', comments: [], risk: 'low' };

  it('publishes review.approved with the risk and the change size when the tests pass', () => {
    const outcome = decideReview(approve, { passed: true, command: 'npm test' }, usage, { changedFiles: ['README.md'], linesChanged: 3 });
    expect(outcome).toEqual({ type: 'review.approved', verdict: approve, testsPassed: true, usage, changedFiles: ['README.md'], linesChanged: 3 });
    expect(ReviewApproved.safeParse({ ...outcome, ...envelope }).success).toBe(true);
  });

  it('turns an approval of a failing commit into changes requested, keeping the risk', () => {
    const outcome = decideReview(approve, { passed: false, command: 'npm test' }, usage);
    expect(outcome).toMatchObject({ type: 'review.changes_requested', testsPassed: false, verdict: { decision: 'request_changes', risk: 'low' } });
    expect(outcome).not.toHaveProperty('changedFiles');
    expect(ReviewChangesRequested.safeParse({ ...outcome, ...envelope }).success).toBe(true);
  });
});

describe('decideReview with a security review', () => {
  const security = {
    summary: 'one issue',
    findings: [{ severity: 'critical' as const, category: 'secrets', file: 'a.ts', line: 1, description: 'a key', suggestedFix: 'remove it', source: 'model' as const }],
  };

  it('carries the findings on the result and leaves the verdict to the model and the tests', () => {
    const approve: Verdict = { decision: 'approve', summary: 'fine', comments: [], risk: 'low' };
    const outcome = decideReview(approve, { passed: true, command: undefined }, usage, undefined, security);
    expect(outcome).toEqual({ type: 'review.approved', verdict: approve, testsPassed: true, usage, security });
    expect(ReviewApproved.safeParse({ ...outcome, ...envelope }).success).toBe(true);
  });
});

describe('parseNumstat', () => {
  it.each([
    ['an empty diff', '', { changedFiles: [], linesChanged: 0 }],
    ['text files', '3\t1\tsrc/a.ts\0' + '10\t0\tdocs/guide.md\0', { changedFiles: ['src/a.ts', 'docs/guide.md'], linesChanged: 14 }],
    ['a binary file, counted with 0 lines', '-\t-\tlogo.png\0' + '1\t1\tREADME.md\0', { changedFiles: ['logo.png', 'README.md'], linesChanged: 2 }],
    ['a path with a tab and a newline', '1\t0\tod\td\nname.txt\0', { changedFiles: ['od\td\nname.txt'], linesChanged: 1 }],
  ])('reads %s', (_name, output, expected) => {
    expect(parseNumstat(output)).toEqual(expected);
  });

  const dir = mkdtempSync(join(tmpdir(), 'sg-numstat-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('measures a real branch, listing both paths of a move', () => {
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'commit.gpgsign=false', ...args], { cwd: dir, encoding: 'utf8' });
    git('init', '--quiet', '-b', 'main');
    writeFileSync(join(dir, 'a.txt'), 'one\ntwo\n');
    git('add', '.');
    git('commit', '--quiet', '-m', 'base');
    git('checkout', '--quiet', '-b', 'work');
    mkdirSync(join(dir, 'docs'));
    git('mv', 'a.txt', 'docs/a.txt');
    writeFileSync(join(dir, 'docs', 'b.md'), 'new\n');
    git('add', '.');
    git('commit', '--quiet', '-m', 'move');
    const change = parseNumstat(git(...NUMSTAT_ARGS, 'main...work'));
    expect([...change.changedFiles].sort()).toEqual(['a.txt', 'docs/a.txt', 'docs/b.md']);
    expect(change.linesChanged).toBe(5);
  });
});
