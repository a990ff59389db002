/**
 * The `stagegate` check as a commit status, where serve holds a token (GitHub lets only Apps write
 * check runs): pending on the head while the task waits at the deploy gate, failed on the head a
 * push left (superseded), and a success only once the gate passed for the head it is on. Over a
 * real nats-server, the orchestrator and serve in-process, the fake GitHub and real git.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FakeStatus } from '../fakes/github/state.js';
import { pushRound } from '../helpers/push-round.js';
import { oneCall } from '../helpers/canned-agents.js';
import { BOT, OWNER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { issueCommentCreated, issueLabeled, pullRequestSynchronize } from '../helpers/github-webhooks.js';
import { waitFor } from '../helpers/wait-for.js';

const MONA = 'mona-maintainer';

let h: GitHubServeHarness;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sg-gate-status-test-'));
  h = await startGitHubServe({
    agents: {
      coder: async (job) => {
        const commit = await pushRound(job, work, { 'greet.js': `export const greet = () => 'hi, round ${job.round}';\n` });
        return { type: 'code.committed', branch: job.branch, commit, summary: 'greet()', attempts: 1, usage: oneCall };
      },
      deployer: async (job) => ({ type: 'deploy.succeeded', commit: job.commit, target: 'main', usage: oneCall }),
    },
  });
  h.github.setPermission(OWNER, REPO, MONA, 'maintain');
}, 60_000);

afterEach(() => h.github.assertNoUnexpected());

afterAll(async () => {
  await h?.stop();
  await rm(work, { recursive: true, force: true });
});

const repo = { owner: OWNER, repo: REPO };
const fakeRepo = () => h.github.state.repo(OWNER, REPO)!;
const statusesOn = (sha: string): FakeStatus[] => fakeRepo().statuses.filter((s) => s.sha === sha && s.context === 'stagegate');
const latestOn = (sha: string, what: string, state: FakeStatus['state']) =>
  waitFor(`the stagegate status on ${sha.slice(0, 7)} ${what}`, async () => {
    const latest = statusesOn(sha).at(-1);
    return latest?.state === state ? latest : undefined;
  });

describe('the stagegate commit status (serve with a token)', () => {
  it('is pending on the head at the deploy gate, fails on the head a push left, and succeeds once the gate passes for the new head', async () => {
    const issue = h.github.addIssue(OWNER, REPO, { title: 'Status: pushed then approved', user: WRITER });
    await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title: issue.title }));
    await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
    await h.send('issue_comment', issueCommentCreated({ ...repo, number: issue.number, body: '/approve', user: WRITER }));
    const record = await h.taskAt(issue.number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
    const head = record.context.head ?? '';
    const branch = record.context.branch;
    const waiting = await latestOn(head, 'pending', 'pending');
    expect(waiting).toMatchObject({ description: `Waiting at the deploy gate for ${head.slice(0, 7)}`, creator: BOT });

    const pushed = await h.github.commitFiles(OWNER, REPO, { 'late.js': 'late\n' }, { branch, message: 'A late change' });
    const pr = [...fakeRepo().issues.values()].find((i) => i.pull?.head === branch);
    await h.send('pull_request', pullRequestSynchronize({ ...repo, number: pr?.number ?? 0, head: branch, before: head, after: pushed, sender: WRITER }));

    expect((await latestOn(head, 'failed, superseded', 'failure')).description).toBe(`Superseded by ${pushed.slice(0, 7)}`);
    await latestOn(pushed, 'pending', 'pending');
    await h.send('issue_comment', issueCommentCreated({ ...repo, number: issue.number, body: `/approve ${pushed.slice(0, 7)}`, user: MONA }));
    expect((await latestOn(pushed, 'successful', 'success')).description).toBe(`Deploy gate passed for ${pushed.slice(0, 7)}`);
    await h.taskAt(issue.number, (s) => s === 'done', 'done');
    // Never a success on the head the gate did not pass, and no check run from a token.
    expect(statusesOn(head).map((s) => s.state)).toEqual(['pending', 'failure']);
    expect(fakeRepo().checkRuns.filter((r) => r.name === 'stagegate')).toEqual([]);
  });
});
