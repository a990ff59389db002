/**
 * Pull requests from forks, through `stagegate serve` and the fake GitHub: a fork can open a pull
 * request from a branch with any name, a Stagegate task's included, so nothing about one starts,
 * steers or approves a task (linking, comment commands, reviews), even from a maintainer.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openIssueIndex } from '../../orchestrator/github/issue-index.js';
import { git } from '../fakes/github/bare-repo.js';
import { addIssue } from '../fakes/github/issues.js';
import { BOT, OWNER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { issueCommentCreated, issueLabeled, pullRequestOpened, pullRequestReviewSubmitted } from '../helpers/github-webhooks.js';

let h: GitHubServeHarness;
const FORK = 'mallory/app';

beforeAll(async () => {
  h = await startGitHubServe();
  await h.github.addRepo({ owner: 'mallory', repo: 'app' });
});

afterEach(() => {
  h.github.assertNoUnexpected();
});

afterAll(async () => {
  await h?.stop();
});

const repo = { owner: OWNER, repo: REPO };
const fakeRepo = () => h.github.state.repo(OWNER, REPO)!;
const commentsOn = (number: number) => fakeRepo().comments.filter((c) => c.issueNumber === number);

/** A task waiting at the plan gate, and a fork's pull request from a branch named like the task's. */
async function taskAndForkPull(): Promise<{ issue: number; taskId: string; branch: string; pull: number }> {
  const issue = h.github.addIssue(OWNER, REPO, { title: 'Add a health endpoint', user: WRITER, labels: ['stagegate'] });
  await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title: 'Add a health endpoint' }));
  const record = await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
  const sha = (await git(fakeRepo().dir, ['rev-parse', 'main'])).trim();
  const branch = record.context.branch;
  const pull = addIssue({ state: h.github.state }, fakeRepo(), {
    title: 'Totally legit change',
    body: null,
    user: 'mallory',
    pull: { head: branch, base: 'main', draft: false, merged: false, mergedAt: null, mergedBy: null, mergeCommitSha: null, lastHeadSha: sha, headRepo: { owner: 'mallory', name: 'app' } },
  });
  return { issue: issue.number, taskId: record.context.taskId, branch, pull: pull.number };
}

async function decisionsOf(taskId: string): Promise<string[]> {
  const seen: string[] = [];
  for await (const entry of h.client.logs(taskId)) if (entry.type === 'task.event' && entry.event.type === 'gate.decide') seen.push(entry.event.by);
  return seen;
}

describe('pull requests from forks', () => {
  it('does not link a fork pull request from a branch named like a task, nor take commands on it, even from a writer', async () => {
    const { issue, taskId, branch, pull } = await taskAndForkPull();

    const opened = await h.send('pull_request', pullRequestOpened({ ...repo, number: pull, head: branch, fork: FORK }));
    const approve = await h.send('issue_comment', issueCommentCreated({ ...repo, number: pull, body: '/approve', user: WRITER, onPullRequest: true }));

    expect(opened.status).toBe(202);
    expect(opened.json).toMatchObject({ status: 'ignored', reason: 'a pull request from a fork starts, steers and approves nothing' });
    expect(await (await openIssueIndex(h.nc)).taskForPullRequest({ ...repo, number: pull })).toBeUndefined();
    expect(approve.status).toBe(200);
    expect(commentsOn(pull)).toEqual([]);
    expect((await h.client.get(taskId)).state).toBe('awaitingPlanApproval');
    expect(await decisionsOf(taskId)).toEqual([]);

    // The same writer on the issue itself decides: the fork was the only reason nothing happened.
    await h.send('issue_comment', issueCommentCreated({ ...repo, number: issue, body: '/approve', user: WRITER }));
    expect(await decisionsOf(taskId)).toEqual([`github:${WRITER}`]);
    expect(commentsOn(issue).filter((c) => c.user === BOT && c.body.startsWith(`@${WRITER} `))).toHaveLength(1);
  });

  it('sends no review requesting changes on a fork pull request back to the coder', async () => {
    const { issue, taskId, branch, pull } = await taskAndForkPull();
    await h.send('issue_comment', issueCommentCreated({ ...repo, number: issue, body: '/approve', user: WRITER }));
    await h.taskAt(issue, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');

    const res = await h.send('pull_request_review', pullRequestReviewSubmitted({ ...repo, number: pull, head: branch, fork: FORK, review: { id: 88_001, state: 'changes_requested', user: WRITER, body: 'Redo it my way.' } }));

    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ status: 'ignored', reason: 'a pull request from a fork starts, steers and approves nothing' });
    expect((await h.client.get(taskId)).state).toBe('awaitingDeployApproval');
    const events: string[] = [];
    for await (const entry of h.client.logs(taskId)) if (entry.type === 'task.event') events.push(entry.event.type);
    expect(events).not.toContain('review.human_changes_requested');
    expect(commentsOn(pull)).toEqual([]);
  });
});
