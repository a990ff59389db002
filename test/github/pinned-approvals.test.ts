/**
 * Deploy approvals pinned to the pull request's head, over a real nats-server, the orchestrator
 * and serve in-process, the fake GitHub and real git: the coder is an in-process stand-in that
 * pushes through the gateway like the real one; a person pushes to the branch with a token of
 * their own and GitHub's `pull_request.synchronize` tells serve. The deploy gate needs two
 * maintainers, so an approval can go stale before the gate passes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DeployRequest } from '../../core/bus/messages.js';
import { statusMarker } from '../../orchestrator/github/status-comment.js';
import type { FakeIssue } from '../fakes/github/state.js';
import { pushRound } from '../helpers/push-round.js';
import { oneCall } from '../helpers/canned-agents.js';
import { cloneFromFake } from '../helpers/github-git.js';
import { BOT, OWNER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { issueCommentCreated, issueLabeled, pullRequestSynchronize } from '../helpers/github-webhooks.js';
import { waitFor } from '../helpers/wait-for.js';

const MONA = 'mona-maintainer';
const MAX = 'max-maintainer';
const WRITER_TOKEN = 'ghp_wendy_writer_token_0002';

let h: GitHubServeHarness;
let work: string;
const deployJobs: DeployRequest[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sg-pinned-test-'));
  h = await startGitHubServe({
    gates: { deploy: { required: 2 } },
    agents: {
      coder: async (job) => {
        const commit = await pushRound(job, work, { 'greet.js': `export const greet = () => 'hi ${job.taskId}';\n` });
        return { type: 'code.committed', branch: job.branch, commit, summary: 'greet()', attempts: 1, usage: oneCall };
      },
      deployer: async (job) => {
        deployJobs.push(job);
        return { type: 'deploy.succeeded', commit: job.commit, target: 'main', usage: oneCall };
      },
    },
  });
  h.github.setPermission(OWNER, REPO, MONA, 'maintain');
  h.github.setPermission(OWNER, REPO, MAX, 'maintain');
  h.github.addUserToken(WRITER_TOKEN, WRITER);
}, 60_000);

afterEach(() => {
  h.github.assertNoUnexpected();
});

afterAll(async () => {
  await h?.stop();
  await rm(work, { recursive: true, force: true });
});

const repo = { owner: OWNER, repo: REPO };
const fakeRepo = () => h.github.state.repo(OWNER, REPO)!;
const repliesTo = (number: number, login: string) => fakeRepo().comments.filter((c) => c.issueNumber === number && c.user === BOT && c.body.startsWith(`@${login} `));
const statusOf = (number: number, taskId: string) => fakeRepo().comments.find((c) => c.issueNumber === number && c.body.startsWith(statusMarker(taskId)))?.body ?? '';
const deployJobsOf = (taskId: string) => deployJobs.filter((j) => j.taskId === taskId);
const merges = () => h.github.requestsTo('PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge');

const comment = (number: number, body: string, user: string) => h.send('issue_comment', issueCommentCreated({ ...repo, number, body, user }));

/** An issue labelled, its plan approved by a writer, its code pushed and reviewed: the task waits at the deploy gate with its pull request open. */
async function taskAtDeployGate(title: string) {
  const issue = h.github.addIssue(OWNER, REPO, { title, user: WRITER });
  await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title }));
  await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
  await comment(issue.number, '/approve', WRITER);
  const record = await h.taskAt(issue.number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
  const pr = await waitFor('the pull request', async () => [...fakeRepo().issues.values()].find((i) => i.pull?.head === record.context.branch));
  return { number: issue.number, taskId: record.context.taskId, branch: record.context.branch, head: record.context.head ?? '', pr };
}

/** A writer pushes a commit of their own to the task's branch; GitHub tells serve. */
async function pushAsPerson(pr: FakeIssue, branch: string, before: string): Promise<string> {
  const wc = await cloneFromFake(h.github, { ...repo, token: WRITER_TOKEN });
  await wc.git(['checkout', '--quiet', '-B', branch, `origin/${branch}`]);
  const after = await wc.commit({ 'extra.js': `late ${Date.now()}\n` }, 'A late change');
  await wc.push(branch);
  await wc.cleanup();
  const res = await h.send('pull_request', pullRequestSynchronize({ ...repo, number: pr.number, head: branch, before, after, sender: WRITER }));
  expect(res.status).toBe(200);
  expect(res.json).toMatchObject({ work: 'tell the task its branch moved' });
  return after;
}

describe('deploy approvals pinned to the head', () => {
  it('makes an approval stale when the branch moves: the gate waits again, the status comment says so, and nothing merges', async () => {
    const { number, taskId, branch, head, pr } = await taskAtDeployGate('Pinned: stale approval');
    expect(head).toMatch(/^[0-9a-f]{40}$/);
    await comment(number, '/approve', MONA);
    expect((await h.client.get(taskId)).context.decisions.at(-1)).toMatchObject({ gate: 'deploy', by: `github:${MONA}`, counted: true, sha: head });

    const moved = await pushAsPerson(pr, branch, head);

    const record = await waitFor('the task to see the push', async () => {
      const r = await h.client.get(taskId);
      return r.context.head === moved ? r : undefined;
    });
    expect(record.state).toBe('awaitingDeployApproval');
    const body = await waitFor('the status comment to name the stale approval', async () => {
      const b = statusOf(number, taskId);
      return b.includes('is stale') ? b : undefined;
    });
    expect(body).toContain(`- approval by @${MONA} for ${head.slice(0, 7)} is stale: the branch moved to ${moved.slice(0, 7)}`);
    expect(body).toContain('**Waiting at the deploy gate**: 0 of 2 approvals');
    expect(body).toContain(`**Pushed since Stagegate's last commit:** @${WRITER} moved the branch to \`${moved.slice(0, 7)}\`. It is kept (never overwritten), a deploy approval must be for it, and it goes into the next review.`);
    expect(record.context.lastPush).toMatchObject({ sha: moved, by: `github:${WRITER}` });

    // One fresh approval is not two: the stale one does not count beside it.
    await comment(number, '/approve', MAX);
    expect((await h.client.get(taskId)).state).toBe('awaitingDeployApproval');
    expect(repliesTo(number, MAX).at(-1)?.body).toContain('your approval counts: the deploy gate has 1 of 2 approvals');
    expect(deployJobsOf(taskId)).toEqual([]);
    expect(merges()).toEqual([]);

    // Approving the new head again passes the gate, and the deploy job carries that head.
    await comment(number, `/approve ${moved.slice(0, 7)}`, MONA);
    const job = await waitFor('the deploy job', async () => deployJobsOf(taskId)[0]);
    expect(job.commit).toBe(moved);
    expect(deployJobsOf(taskId)).toHaveLength(1);
  });

  it('refuses /approve <sha> naming a commit that is not the head, with a reply naming the head; /approve <head> counts', async () => {
    const { number, taskId, head, branch } = await taskAtDeployGate('Pinned: named sha');
    const wrong = head.startsWith('0000000') ? '1111111' : '0000000';

    await comment(number, `/approve ${wrong} ship it`, MONA);

    expect(repliesTo(number, MONA).at(-1)?.body).toBe(
      `@${MONA} \`${wrong}\` is not the head of \`${branch}\`: the branch is at \`${head.slice(0, 7)}\` now, and only an approval of the head counts. Look at \`${head.slice(0, 7)}\`, then \`/approve ${head.slice(0, 7)}\` to approve it. Nothing changed.`,
    );
    let record = await h.client.get(taskId);
    expect(record.context.decisions.filter((d) => d.gate === 'deploy')).toEqual([]);
    expect(record.state).toBe('awaitingDeployApproval');

    await comment(number, `/approve ${head} ship it`, MONA);
    record = await h.client.get(taskId);
    expect(record.context.decisions.at(-1)).toMatchObject({ gate: 'deploy', by: `github:${MONA}`, counted: true, sha: head, comment: 'ship it' });
    expect(repliesTo(number, MONA).at(-1)?.body).toContain('your approval counts: the deploy gate has 1 of 2 approvals');
    expect(deployJobsOf(taskId)).toEqual([]);
  });

  it("ignores a push it already knows (the coder's own), and a push to a branch that is not Stagegate's", async () => {
    const { taskId, head, pr, branch } = await taskAtDeployGate('Pinned: known head');
    const res = await h.send('pull_request', pullRequestSynchronize({ ...repo, number: pr.number, head: branch, before: '0'.repeat(40), after: head, sender: BOT }));
    expect(res.status).toBe(200);
    const entries = [];
    for await (const entry of h.client.logs(taskId)) if (entry.type === 'task.event' && entry.event.type === 'branch.moved') entries.push(entry);
    expect(entries).toEqual([expect.objectContaining({ accepted: false })]);
    // Stagegate's own login names nobody: its push is no person's.
    expect(entries[0]?.type === 'task.event' && entries[0].event.type === 'branch.moved' ? entries[0].event.by : 'not a branch.moved').toBeUndefined();
    expect((await h.client.get(taskId)).context.head).toBe(head);

    const other = await h.send('pull_request', pullRequestSynchronize({ ...repo, number: pr.number, head: 'feature/x', before: head, after: head, sender: WRITER }));
    expect(other.status).toBe(202);
    expect(other.json).toMatchObject({ status: 'ignored', reason: 'not a Stagegate branch' });
  });
});
