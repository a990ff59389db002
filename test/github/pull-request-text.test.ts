import { describe, expect, it } from 'vitest';
import type { Verdict } from '../../core/bus/messages.js';
import { linesInPatch, pullRequestBody, reviewMarker, reviewText } from '../../orchestrator/github/pull-request-text.js';

const verdict: Verdict = {
  decision: 'request_changes',
  summary: 'Needs a test, @octocat.',
  risk: 'medium',
  comments: [
    { file: 'src/a.ts', line: 3, body: 'on the diff' },
    { file: 'src/a.ts', line: 40, body: 'outside the hunk' },
    { file: 'docs/b.md', line: 1, body: 'a file the change does not touch' },
    { file: 'src/big.ts', line: 9, body: 'a file without a patch' },
    { file: 'src/a.ts', line: null, body: 'the whole file' },
  ],
};

describe('pull request text', () => {
  it('reads the new-side lines a unified diff covers, context included, deletions not', () => {
    const patch = ['@@ -1,3 +1,4 @@', ' one', '-two', '+2', '+2b', ' three', '@@ -10,2 +11,2 @@', ' ten', '-eleven', '+11'].join('\n');
    expect([...linesInPatch(patch)]).toEqual([1, 2, 3, 4, 11, 12]);
  });

  it('puts comments on lines of the diff and every other one in the text', () => {
    const text = reviewText({ jobId: 't-1:review:2', verdict, testsPassed: false, diffLines: new Map<string, Set<number> | 'unknown'>([['src/a.ts', new Set([1, 2, 3])], ['src/big.ts', 'unknown']]) });

    expect(text.comments).toEqual([
      { path: 'src/a.ts', line: 3, side: 'RIGHT', body: 'on the diff' },
      { path: 'src/big.ts', line: 9, side: 'RIGHT', body: 'a file without a patch' },
    ]);
    expect(text.body.split('\n')).toEqual([
      '**Stagegate reviewer: changes requested** · risk medium · tests failed',
      '',
      'Needs a test, @\u200boctocat.',
      '',
      'Comments on lines outside the diff:',
      '',
      '- `src/a.ts:40` — outside the hunk',
      '- `docs/b.md:1` — a file the change does not touch',
      '- `src/a.ts` — the whole file',
      '',
      reviewMarker('t-1:review:2'),
    ]);
  });

  it('puts every comment in the text when line comments are refused', () => {
    const text = reviewText({ jobId: 'j', verdict, testsPassed: true, diffLines: new Map([['src/a.ts', new Set([3])]]) }, false);
    expect(text.comments).toEqual([]);
    expect(text.body).toContain('- `src/a.ts:3` — on the diff');
  });

  it('adds the security review after the verdict: its count and each finding, worst first, with the fix', () => {
    const finding = { category: 'injection', file: 'src/db.js', line: 2, description: 'SQL from input, cc @octocat', suggestedFix: 'Use a parameter.', source: 'model' as const };
    const security = {
      summary: 'One real issue, see @team.',
      findings: [
        { ...finding, severity: 'low' as const, line: null, description: 'Consider a limit.', suggestedFix: '' },
        { ...finding, severity: 'high' as const },
      ],
    };
    const text = reviewText({ jobId: 'j', verdict: { ...verdict, comments: [] }, testsPassed: true, security, diffLines: new Map() });
    expect(text.body.split('\n').slice(4, -2)).toEqual([
      '**Security review:** 2 findings (1 high, 1 low) — One real issue, see @\u200bteam.',
      '',
      '- **high** injection `src/db.js:2` — SQL from input, cc @\u200boctocat Fix: Use a parameter.',
      '- **low** injection `src/db.js` — Consider a limit.',
    ]);
    expect(text.comments).toEqual([]);
    expect(reviewText({ jobId: 'j', verdict, testsPassed: true, diffLines: new Map() }).body).not.toContain('Security review');
  });

  it('says Closes #N and keeps issue and model text from closing the marker or pinging anyone', () => {
    const body = pullRequestBody({
      taskId: 't-9',
      title: 'x',
      issueNumber: 42,
      plan: { summary: 'Plan for @team -->', steps: [{ title: 'Step <!-- one', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] },
      summary: 'Done. cc @someone',
      commit: '0123456789abcdef',
    });
    expect(body.startsWith('Closes #42\n')).toBe(true);
    expect(body).toContain('> Plan for @\u200bteam ');
    expect(body).toContain('- Step  one');
    expect(body).toContain('Done. cc @\u200bsomeone');
    expect(body.match(/<!--/g)).toHaveLength(1);
    expect(body.endsWith('<!-- stagegate:pr t-9 -->')).toBe(true);
  });
});
