import { describe, expect, it } from 'vitest';
import { TaskSpec } from '../../core/bus/messages.js';
import { IssuesLabeled } from '../../orchestrator/github/payloads.js';
import { branchForIssue, cloneUrlOf, slugOf, specForIssue } from '../../orchestrator/github/triggers.js';
import { issueLabeled } from '../helpers/github-webhooks.js';

describe('issue triggers', () => {
  it.each([
    ['Spelling error in the README file', 'spelling-error-in-the-readme-file'],
    ['Fix `rm -rf /`; $(whoami) && ../../etc', 'fix-rm-rf-whoami-etc'],
    ['Café naïve — déjà vu', 'cafe-naive-deja-vu'],
    ['   ', ''],
    ['日本語のタイトル', ''],
    ['A very long title that goes on and on well past forty characters', 'a-very-long-title-that-goes-on-and-on-we'],
  ])('slugs %j to %j, with only a-z, 0-9 and dashes', (title, slug) => {
    expect(slugOf(title)).toBe(slug);
    expect(slugOf(title)).toMatch(/^(?:[a-z0-9]+(?:-[a-z0-9]+)*)?$/);
  });

  it('names the branch stagegate/<issue>-<slug>, or stagegate/<issue> when the title has nothing usable', () => {
    expect(branchForIssue(12, 'Add a health endpoint')).toBe('stagegate/12-add-a-health-endpoint');
    expect(branchForIssue(7, '!!!')).toBe('stagegate/7');
  });

  it('builds the task spec from a labelled issue: title, body, clone URL, default branch, submitter and source', () => {
    const payload = IssuesLabeled.parse(
      issueLabeled({ owner: 'acme', repo: 'app', number: 12, label: 'stagegate', sender: 'octocat', title: 'Add a health endpoint', body: 'GET /health returns 200', defaultBranch: 'trunk', installationId: 77 }),
    );
    const spec = specForIssue(payload, cloneUrlOf('http://127.0.0.1:9/git/', 't-0a1b2c3d4e', { owner: 'acme', repo: 'app' }), 77);
    expect(TaskSpec.parse(spec)).toEqual({
      repo: 'http://127.0.0.1:9/git/t-0a1b2c3d4e/acme/app.git',
      title: 'Add a health endpoint',
      body: 'GET /health returns 200',
      base: 'trunk',
      submittedBy: 'github:octocat',
      branch: 'stagegate/12-add-a-health-endpoint',
      source: { kind: 'github', owner: 'acme', repo: 'app', issueNumber: 12, installationId: 77 },
    });
  });

  it('gives an issue with no body an empty one', () => {
    const payload = IssuesLabeled.parse(issueLabeled({ owner: 'acme', repo: 'app', number: 3, label: 'stagegate', sender: 'octocat', body: null }));
    expect(specForIssue(payload, 'x').body).toBe('');
  });
});
