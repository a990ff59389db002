/**
 * The `stagegate` check run on the head of a task's branch, written by serve as a GitHub App
 * (only Apps may write check runs), over a real nats-server, the orchestrator in-process, the
 * fake GitHub and real git: in progress while the task waits, success only once the deploy gate
 * passed for that commit, failure when the gate rejects it, and a run of its own for a new head.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DeployRequest } from '../../core/bus/messages.js';
import type { FakeCheckRun } from '../fakes/github/state.js';
import { pushRound } from '../helpers/push-round.js';
import { oneCall } from '../helpers/canned-agents.js';
import { APP_BOT, OWNER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { cloneFromFake } from '../helpers/github-git.js';
import { issueCommentCreated, issueLabeled, pullRequestSynchronize } from '../helpers/github-webhooks.js';
import { waitFor } from '../helpers/wait-for.js';

const MONA = 'mona-maintainer';
const WRITER_TOKEN = 'ghp_wendy_writer_token_0003';

let h: GitHubServeHarness;
let work: string;
const deployJobs: DeployRequest[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sg-gate-check-test-'));
  h = await startGitHubServe({
    app: true,
    agents: {
      coder: async (job) => {
        // The task's id in the file: two tasks' commits in the same second must not share a sha (and its check runs).
        const commit = await pushRound(job, work, { 'greet.js': `export const greet = () => 'hi, round ${job.round} of ${job.taskId}';\n` });
        return { type: 'code.committed', branch: job.branch, commit, summary: 'greet()', attempts: 1, usage: oneCall };
      },
      deployer: async (job) => {
        deployJobs.push(job);
        return { type: 'deploy.succeeded', commit: job.commit, target: 'main', usage: oneCall };
      },
    },
  });
  h.github.setPermission(OWNER, REPO, MONA, 'maintain');
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
const runsOn = (sha: string): FakeCheckRun[] => fakeRepo().checkRuns.filter((r) => r.headSha === sha && r.name === 'stagegate');
const comment = (number: number, body: string, user: string) => h.send('issue_comment', issueCommentCreated({ ...repo, number, body, user }));

async function taskAtDeployGate(title: string) {
  const issue = h.github.addIssue(OWNER, REPO, { title, user: WRITER });
  await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title }));
  await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
  await comment(issue.number, '/approve', WRITER);
  const record = await h.taskAt(issue.number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
  return { number: issue.number, taskId: record.context.taskId, head: record.context.head ?? '', branch: record.context.branch };
}

/** Waits until the latest `stagegate` run on `sha` says `what`. */
const latestRunOn = (sha: string, what: string, accept: (run: FakeCheckRun) => boolean) =>
  waitFor(`the stagegate check run on ${sha.slice(0, 7)} ${what}`, async () => {
    const run = runsOn(sha).at(-1);
    return run !== undefined && accept(run) ? run : undefined;
  });

describe('the stagegate check run', () => {
  it('is in progress on the head while the task waits at the deploy gate, and succeeds once the gate passes for that head', async () => {
    const { number, taskId, head } = await taskAtDeployGate('Check: approved');
    const waiting = await latestRunOn(head, 'waiting at the deploy gate', (r) => r.status === 'in_progress' && r.output.title === `Waiting at the deploy gate for ${head.slice(0, 7)}`);
    expect(waiting).toMatchObject({ conclusion: null, app: 'stagegate', externalId: taskId });
    expect(deployJobs.filter((j) => j.taskId === taskId)).toEqual([]);

    await comment(number, `/approve ${head.slice(0, 7)}`, MONA);

    const passed = await latestRunOn(head, 'successful', (r) => r.status === 'completed');
    expect(passed).toMatchObject({ id: waiting.id, conclusion: 'success' });
    expect(passed.output.title).toBe(`Deploy gate passed for ${head.slice(0, 7)}`);
    await h.taskAt(number, (s) => s === 'done', 'done');
    // The same run throughout, written by the App: no second run on the head, and none elsewhere.
    expect(runsOn(head)).toHaveLength(1);
    expect(fakeRepo().checkRuns.filter((r) => r.name === 'stagegate' && r.externalId === taskId).map((r) => r.headSha)).toEqual([head]);
    expect(h.github.requestsTo('POST /repos/{owner}/{repo}/check-runs').every((r) => r.callerKind === 'installation')).toBe(true);
    expect(fakeRepo().comments.some((c) => c.user === APP_BOT && c.issueNumber === number)).toBe(true);
  });

  it('fails on the head the deploy gate rejected, and the next head gets a run of its own, in progress', async () => {
    const { number, taskId, head } = await taskAtDeployGate('Check: rejected');
    await latestRunOn(head, 'in progress', (r) => r.status === 'in_progress');

    await comment(number, '/reject not like this', MONA);

    const failed = await latestRunOn(head, 'failed', (r) => r.status === 'completed');
    expect(failed).toMatchObject({ conclusion: 'failure' });
    expect(failed.output.title).toBe(`Deploy gate rejected ${head.slice(0, 7)}`);
    const next = await waitFor('the new head', async () => {
      const r = await h.client.get(taskId);
      return r.state === 'awaitingDeployApproval' && r.context.head !== head ? r.context.head : undefined;
    });
    expect(next).not.toBeNull();
    const fresh = await latestRunOn(next ?? '', 'in progress', (r) => r.status === 'in_progress');
    expect(fresh.id).not.toBe(failed.id);
    // Nothing succeeded anywhere, and nothing was deployed.
    expect(runsOn(head).map((r) => r.conclusion)).toEqual(['failure']);
    expect(deployJobs.filter((j) => j.taskId === taskId)).toEqual([]);
  });

  it('fails the run on the head a push left, superseded, and puts a new run in progress on the new head', async () => {
    const { taskId, head, branch } = await taskAtDeployGate('Check: pushed');
    const waiting = await latestRunOn(head, 'in progress', (r) => r.status === 'in_progress');
    const pr = await waitFor('the pull request', async () => [...fakeRepo().issues.values()].find((i) => i.pull?.head === branch));
    const wc = await cloneFromFake(h.github, { ...repo, token: WRITER_TOKEN });
    await wc.git(['checkout', '--quiet', '-B', branch, `origin/${branch}`]);
    const pushed = await wc.commit({ 'late.js': 'late\n' }, 'A late change');
    await wc.push(branch);
    await wc.cleanup();

    await h.send('pull_request', pullRequestSynchronize({ ...repo, number: pr.number, head: branch, before: head, after: pushed, sender: WRITER }));

    const superseded = await latestRunOn(head, 'superseded', (r) => r.status === 'completed');
    expect(superseded).toMatchObject({ id: waiting.id, conclusion: 'failure' });
    expect(superseded.output.title).toBe(`Superseded by ${pushed.slice(0, 7)}`);
    const fresh = await latestRunOn(pushed, 'in progress', (r) => r.status === 'in_progress');
    expect(fresh.output.title).toBe(`Waiting at the deploy gate for ${pushed.slice(0, 7)}`);
    expect((await h.client.get(taskId)).state).toBe('awaitingDeployApproval');
    expect(deployJobs.filter((j) => j.taskId === taskId)).toEqual([]);
  });
});
