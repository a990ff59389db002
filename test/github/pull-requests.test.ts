/**
 * The task's pull request, kept by serve: opened once from the branch the coder pushed through
 * the git gateway (`Closes #N`, the plan, the summary) and updated on later rounds; the
 * reviewer's verdict posted once per review as a review with line comments; a writer's
 * changes-requested review sending the work back to the coder with its comments. Over a real
 * nats-server, the orchestrator and serve in-process, and the fake GitHub; the coder is an
 * in-process stand-in that clones and pushes through the gateway like the real one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImplementRequest, TaskEventRecorded, Verdict } from '../../core/bus/messages.js';
import { loadConfig } from '../../core/config.js';
import { createGitHubClient } from '../../core/github/client.js';
import { cloneForJob, remoteBranchExists } from '../../core/git/workspace.js';
import { openIssueIndex } from '../../orchestrator/github/issue-index.js';
import { onAppliedEvent } from '../../orchestrator/github/pull-request-channel.js';
import { reviewMarker } from '../../orchestrator/github/pull-request-text.js';
import { statusMarker } from '../../orchestrator/github/status-comment.js';
import type { FakeIssue } from '../fakes/github/state.js';
import { oneCall } from '../helpers/canned-agents.js';
import { cloneFromFake } from '../helpers/github-git.js';
import { BOT, OWNER, READER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { issueCommentCreated, issueLabeled, pullRequestReviewSubmitted } from '../helpers/github-webhooks.js';
import { waitFor } from '../helpers/wait-for.js';

const silent = pino({ level: 'silent' });
const WRITER_TOKEN = 'ghp_wendy_writer_token_0001';
const READER_TOKEN = 'ghp_rita_reader_token_0001';
const BOT_TOKEN = 'ghp_stagegate_test_token_0001';
const GREET = ['export function greet(name) {', '  return `Hello, ${name}!`;', '}', ''].join('\n');
const verdict: Verdict = {
  decision: 'approve',
  summary: 'Reads well; two small things.',
  risk: 'low',
  comments: [
    { file: 'greet.js', line: 2, body: 'Consider a default for name.' },
    { file: 'README.md', line: 1, body: 'Mention greet() in the README.' },
  ],
};

let h: GitHubServeHarness;
let work: string;
const coderJobs: ImplementRequest[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sg-pr-test-'));
  h = await startGitHubServe({
    agents: {
      // Like the real coder: a fresh clone of job.task.repo (the gateway), the branch resumed or started, one commit, a push.
      coder: async (job) => {
        coderJobs.push(job);
        const ws = await cloneForJob({ repo: job.task.repo, workDir: work, taskId: job.taskId, name: `implement-${job.attempt}` });
        const resumes = await remoteBranchExists(ws, job.branch);
        await ws.git(['checkout', '--quiet', '-B', job.branch, `origin/${resumes ? job.branch : job.task.base}`]);
        await writeFile(join(ws.dir, 'greet.js'), job.round === 1 ? GREET : GREET.replace('Hello', 'Bonjour'));
        await ws.git(['add', '--all']);
        await ws.git(['commit', '--quiet', '-m', `Round ${job.round}`]);
        await ws.git(['push', '--quiet', 'origin', `HEAD:refs/heads/${job.branch}`]);
        const commit = (await ws.git(['rev-parse', 'HEAD'])).trim();
        await ws.remove();
        return { type: 'code.committed', branch: job.branch, commit, summary: `Round ${job.round}: greet() in greet.js.`, attempts: 1, usage: oneCall };
      },
      reviewer: async () => ({ type: 'review.approved', testsPassed: true, verdict, usage: oneCall }),
    },
  });
  h.github.addUserToken(WRITER_TOKEN, WRITER);
  h.github.addUserToken(READER_TOKEN, READER);
}, 60_000);

afterAll(async () => {
  await h?.stop();
  await rm(work, { recursive: true, force: true });
});

const repo = { owner: OWNER, repo: REPO };
const fakeRepo = () => h.github.state.repo(OWNER, REPO)!;
const pullsFrom = (branch: string) => [...fakeRepo().issues.values()].filter((i) => i.pull?.head === branch);
const reviewsOn = (number: number) => fakeRepo().reviews.filter((r) => r.pullNumber === number);
const repliesOn = (number: number, login: string) => fakeRepo().comments.filter((c) => c.issueNumber === number && c.user === BOT && c.body.startsWith(`@${login} `));

function clientAs(token: string) {
  const { github } = loadConfig({ env: { GITHUB_TOKEN: token, GITHUB_API_URL: h.github.url, STAGEGATE_GITHUB_PACE_WRITES: 'false' } });
  return createGitHubClient(github, silent, { retries: 0 }).forRepository(repo);
}

/** An issue labelled and its plan approved by a writer: the task runs to the deploy gate. */
async function taskAtDeployGate(title: string) {
  const issue = h.github.addIssue(OWNER, REPO, { title, user: WRITER });
  await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title }));
  await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
  await h.send('issue_comment', issueCommentCreated({ ...repo, number: issue.number, body: '/approve', user: WRITER }));
  const record = await h.taskAt(issue.number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
  const pr = await waitFor('the pull request and its review', async () => {
    const [found] = pullsFrom(record.context.branch);
    return found !== undefined && reviewsOn(found.number).length > 0 ? found : undefined;
  });
  return { issue, record, pr };
}

/** A `pull_request_review.submitted` delivery on the pull request. */
function reviewSubmitted(pr: FakeIssue, review: { id: number; state: string; user: string; body?: string }) {
  return pullRequestReviewSubmitted({ owner: OWNER, repo: REPO, number: pr.number, head: pr.pull?.head ?? '', review });
}

async function appliedEvent(taskId: string, type: string): Promise<TaskEventRecorded> {
  for await (const entry of h.client.logs(taskId)) {
    if (entry.type === 'task.event' && entry.accepted && entry.event.type === type) return entry;
  }
  throw new Error(`no applied ${type} for ${taskId}`);
}

describe('pull requests', () => {
  it('opens one pull request from the branch the coder pushed through the gateway, with Closes #N, the plan and the summary', async () => {
    const { issue, record, pr } = await taskAtDeployGate('Add a greeting');
    const head = fakeRepo().issues.get(pr.number)!;

    expect(pullsFrom(record.context.branch)).toHaveLength(1);
    expect(head).toMatchObject({ title: 'Add a greeting', user: BOT, state: 'open' });
    expect(head.pull).toMatchObject({ head: record.context.branch, base: 'main', lastHeadSha: record.context.implementation?.commit });
    expect(head.body).toContain(`Closes #${issue.number}`);
    expect(head.body).toContain('> add the feature');
    expect(head.body).toContain('Round 1: greet() in greet.js.');
    expect(record.context.spec.repo).toBe(`${h.serve.url}/git/${record.context.taskId}/${OWNER}/${REPO}.git`);
    const pushes = h.github.pushes.flatMap((p) => p.updates.map((u) => ({ ...u, user: p.user }))).filter((u) => u.ref === `refs/heads/${record.context.branch}`);
    expect(pushes).toEqual([expect.objectContaining({ user: BOT, created: true, forced: false, applied: true })]);
    await waitFor('the status comment to show the pull request', async () =>
      fakeRepo().comments.find((c) => c.issueNumber === issue.number && c.body.startsWith(statusMarker(record.context.taskId)) && c.body.includes(`**Pull request:** #${pr.number}`)),
    );
  });

  it("posts the reviewer's verdict once as a review: a comment on a line of the diff, the other in the text", async () => {
    const { record, pr } = await taskAtDeployGate('Add a farewell');
    const [review] = reviewsOn(pr.number);

    expect(reviewsOn(pr.number)).toHaveLength(1);
    expect(review).toMatchObject({ user: BOT, state: 'COMMENTED' });
    expect(review?.body).toContain('**Stagegate reviewer: approved** · risk low · tests passed');
    expect(review?.body).toContain('- `README.md:1` — Mention greet() in the README.');
    expect(review?.body).toContain(reviewMarker(`${record.context.taskId}:review:1`));
    expect(fakeRepo().reviewComments.filter((c) => c.reviewId === review?.id)).toEqual([expect.objectContaining({ path: 'greet.js', line: 2, side: 'RIGHT', body: 'Consider a default for name.' })]);

    const replayed = await appliedEvent(record.context.taskId, 'review.approved');
    const deps = { tasks: h.client, index: await openIssueIndex(h.nc), github: createGitHubClient(h.config.github, silent), refreshStatus: async () => undefined, log: silent };
    await onAppliedEvent(deps, replayed);
    await onAppliedEvent(deps, await appliedEvent(record.context.taskId, 'code.committed'));

    expect(reviewsOn(pr.number)).toHaveLength(1);
    expect(pullsFrom(record.context.branch)).toHaveLength(1);
  });

  it("sends the work back to the coder on a writer's changes-requested review, with its comments, and updates the pull request", async () => {
    const { issue, record, pr } = await taskAtDeployGate('Add a welcome');
    const octokit = await clientAs(WRITER_TOKEN);
    const { data: review } = await octokit.rest.pulls.createReview({
      ...repo,
      pull_number: pr.number,
      event: 'REQUEST_CHANGES',
      body: 'Please say it in French.',
      comments: [{ path: 'greet.js', line: 2, body: 'Bonjour, not Hello.' }],
    });
    const before = coderJobs.length;

    const res = await h.send('pull_request_review', reviewSubmitted(pr, { id: review.id, state: 'changes_requested', user: WRITER, body: 'Please say it in French.' }));

    expect(res.status).toBe(200);
    const job = await waitFor('the second coder job', async () => coderJobs.slice(before).find((j) => j.taskId === record.context.taskId));
    expect(job.round).toBe(2);
    const [line] = fakeRepo().reviewComments.filter((c) => c.reviewId === review.id);
    expect(job.reviewComments).toEqual([{ file: 'greet.js', line: 2, body: 'Bonjour, not Hello.', commentId: line?.id }]);
    expect(job.feedback).toEqual([`github:${WRITER} requested changes in a review of the pull request: Please say it in French.`]);
    const back = await waitFor('the second round reviewed', async () => {
      const r = await h.client.get(record.context.taskId);
      return r.state === 'awaitingDeployApproval' && r.context.attempts.implement === 2 ? r : undefined;
    });
    await waitFor('the pull request updated', async () => (fakeRepo().issues.get(pr.number)?.body?.includes('Round 2: greet() in greet.js.') === true ? true : undefined));
    expect(pullsFrom(record.context.branch)).toHaveLength(1);
    expect(fakeRepo().issues.get(pr.number)?.pull?.lastHeadSha).toBe(back.context.implementation?.commit);
    expect(repliesOn(pr.number, WRITER).map((c) => c.body)).toEqual([`@${WRITER} sending task \`${record.context.taskId}\` back to the coder with your review (1 line comment); the status comment follows it.`]);
    expect(issue.number).toBeGreaterThan(0);
  });

  it('does not send the work back on a reader\'s changes-requested review, and says why', async () => {
    const { record, pr } = await taskAtDeployGate('Add a toast');
    const octokit = await clientAs(READER_TOKEN);
    const { data: review } = await octokit.rest.pulls.createReview({ ...repo, pull_number: pr.number, event: 'REQUEST_CHANGES', body: 'I do not like it.' });

    const res = await h.send('pull_request_review', reviewSubmitted(pr, { id: review.id, state: 'changes_requested', user: READER, body: 'I do not like it.' }));

    expect(res.status).toBe(200);
    expect(repliesOn(pr.number, READER)[0]?.body).toContain(`only from people with write permission or more on ${OWNER}/${REPO}, and yours is read. Nothing changed.`);
    expect((await h.client.get(record.context.taskId)).state).toBe('awaitingDeployApproval');
  });

  it('starts no coder round for an approving review without line comments, and says nothing', async () => {
    const { record, pr } = await taskAtDeployGate('Add a cheer');
    const before = coderJobs.length;

    const res = await h.send('pull_request_review', reviewSubmitted(pr, { id: 77_001, state: 'approved', user: WRITER }));

    expect(res.status).toBe(200);
    expect(coderJobs.slice(before)).toEqual([]);
    expect(repliesOn(pr.number, WRITER)).toEqual([]);
    expect((await h.client.get(record.context.taskId)).state).toBe('awaitingDeployApproval');
  });

  it('ignores a review in a state it does not know', async () => {
    const { pr } = await taskAtDeployGate('Add a hum');

    const res = await h.send('pull_request_review', reviewSubmitted(pr, { id: 77_003, state: 'dismissed', user: WRITER }));

    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ status: 'ignored', reason: 'a review that is dismissed' });
  });

  it('tells the reviewer when the task is not at the review or deploy gate', async () => {
    const issue = h.github.addIssue(OWNER, REPO, { title: 'Add a wave', user: WRITER });
    await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title: 'Add a wave' }));
    const record = await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
    const wc = await cloneFromFake(h.github, { ...repo, token: BOT_TOKEN });
    await wc.commit({ 'wave.js': 'wave\n' }, 'A head start');
    await wc.push(record.context.branch);
    await wc.cleanup();
    const { data: pull } = await (await clientAs(WRITER_TOKEN)).rest.pulls.create({ ...repo, head: record.context.branch, base: 'main', title: 'Early' });
    const pr = fakeRepo().issues.get(pull.number)!;

    const res = await h.send('pull_request_review', reviewSubmitted(pr, { id: 77_002, state: 'changes_requested', user: WRITER, body: 'Too early.' }));

    expect(res.status).toBe(200);
    expect(repliesOn(pr.number, WRITER)[0]?.body).toContain(`task \`${record.context.taskId}\` is awaitingPlanApproval: review comments go back to the coder while the task waits at the review or deploy gate`);
    expect((await h.client.get(record.context.taskId)).state).toBe('awaitingPlanApproval');
  });
});
