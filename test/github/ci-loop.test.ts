/**
 * The CI-fix loop over a real nats-server, the orchestrator and serve in-process, the fake GitHub
 * and real git. The coder is an in-process stand-in that pushes through the gateway like the real
 * one and, as a repository's CI would on a push, gets a check run started on its commit; the test
 * plays CI, finishing that run (with output, annotations and an Actions job log) and sending the
 * `check_run` webhook, or leaving serve's poll to find it. When the loop stops for a person, the
 * person's fix pushed to the branch is reviewed and its checks read, with no coder round.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ImplementRequest } from '../../core/bus/messages.js';
import type { TaskRecord } from '../../core/task-record.js';
import { statusMarker } from '../../orchestrator/github/status-comment.js';
import type { FakeAnnotation } from '../fakes/github/state.js';
import { pushRound } from '../helpers/push-round.js';
import { oneCall } from '../helpers/canned-agents.js';
import { OWNER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { checkRunCompleted, commitStatus, issueCommentCreated, issueLabeled, pullRequestSynchronize } from '../helpers/github-webhooks.js';
import { waitFor } from '../helpers/wait-for.js';

let h: GitHubServeHarness;
let work: string;
const coderJobs: ImplementRequest[] = [];
const deployed: string[] = [];
const repo = { owner: OWNER, repo: REPO };

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sg-ci-loop-'));
  h = await startGitHubServe({
    // A short poll, so a check whose webhook never came is still found; no checks at all would count only after a minute.
    ci: { enabled: true, pollMs: 300, noChecksAfterMs: 60_000, maxFixAttempts: 3 },
    gates: { deploy: { approvers: ['github-permission:write'] } },
    agents: {
      coder: async (job) => {
        if (job.type !== 'implement.request') throw new Error(`unexpected ${job.type}`);
        coderJobs.push(job);
        const commit = await pushRound(job, work, { 'parse.js': `export const parse = () => ${job.round};\n` });
        // The repository's CI starts on the push.
        await h.github.setCheck(OWNER, REPO, commit, 'test', { status: 'in_progress', app: 'github-actions' });
        return { type: 'code.committed', branch: job.branch, commit, summary: `round ${job.round}`, attempts: 1, usage: oneCall };
      },
      deployer: async (job) => {
        deployed.push(job.commit);
        return { type: 'deploy.succeeded', commit: job.commit, target: 'main', usage: oneCall };
      },
    },
  });
}, 60_000);

afterEach(() => h.github.assertNoUnexpected());

afterAll(async () => {
  await h?.stop();
  await rm(work, { recursive: true, force: true });
});

const fakeRepo = () => h.github.state.repo(OWNER, REPO)!;
const statusOf = (number: number, taskId: string) => fakeRepo().comments.find((c) => c.issueNumber === number && c.body.startsWith(statusMarker(taskId)))?.body ?? '';
const jobsOf = (taskId: string) => coderJobs.filter((j) => j.taskId === taskId);

async function taskWaitingForChecks(title: string): Promise<{ number: number; record: TaskRecord }> {
  const issue = h.github.addIssue(OWNER, REPO, { title, user: WRITER });
  await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title }));
  await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
  await h.send('issue_comment', issueCommentCreated({ ...repo, number: issue.number, body: '/approve', user: WRITER }));
  return { number: issue.number, record: await h.taskAt(issue.number, (s) => s === 'awaitingChecks', 'waiting for checks') };
}

const FAILING_LOG = [
  '2026-11-25T10:00:01.0000000Z ##[group]Run npm test',
  '2026-11-25T10:00:02.1234567Z > vitest run',
  '2026-11-25T10:00:05.0000000Z \u001b[31mFAIL\u001b[39m test/parse.test.js > parses dates',
  "2026-11-25T10:00:05.0000000Z AssertionError: expected '2026-13-01' to be a valid date",
  '2026-11-25T10:00:06.0000000Z ##[error]Process completed with exit code 1.',
].join('\n');
const ANNOTATION: FakeAnnotation = { path: 'test/parse.test.js', startLine: 12, level: 'failure', message: "expected '2026-13-01' to be a valid date", title: 'parses dates' };

/** CI finishes the run on `commit` red, with its output, annotation and log; `webhook` false leaves it to the poll. */
async function ciFails(number: number, record: TaskRecord, options: { webhook?: boolean } = {}) {
  const commit = record.context.implementation?.commit ?? '';
  await h.github.setCheck(OWNER, REPO, commit, 'test', {
    conclusion: 'failure',
    app: 'github-actions',
    output: { title: '1 test failed', summary: 'parses dates' },
    annotations: [ANNOTATION],
    log: FAILING_LOG,
  });
  if (options.webhook !== false) await h.send('check_run', checkRunCompleted({ ...repo, branch: record.context.branch, sha: commit, name: 'test', conclusion: 'failure' }));
}

async function ciPasses(record: TaskRecord, options: { webhook?: boolean } = {}) {
  const commit = record.context.implementation?.commit ?? '';
  await h.github.setCheck(OWNER, REPO, commit, 'test', { conclusion: 'success', app: 'github-actions', log: 'ok\n' });
  if (options.webhook !== false) await h.send('check_run', checkRunCompleted({ ...repo, branch: record.context.branch, sha: commit, name: 'test', conclusion: 'success' }));
}

describe('CI until green', () => {
  it('sends a failure back to the coder with the output, annotation and job log, and goes on to the deploy gate once green', async () => {
    const { number, record } = await taskWaitingForChecks('Fix the date parser');
    const taskId = record.context.taskId;
    await waitFor('the status comment to say it waits for checks', async () => (statusOf(number, taskId).includes('⏳ Waiting for checks') ? true : undefined));

    await ciFails(number, record);
    const second = await waitFor('a second coder job', async () => jobsOf(taskId)[1]);
    const told = second.feedback.at(-1) ?? '';
    expect(told).toContain('CI failed on');
    expect(told).toContain('fix attempt 1 of 3');
    expect(told).toContain('1 test failed');
    expect(told).toContain("test/parse.test.js:12: parses dates: expected '2026-13-01' to be a valid date");
    expect(told).toContain('FAIL test/parse.test.js > parses dates');
    expect(told).not.toContain('\u001b[');
    expect(told).not.toContain('2026-11-25T10:00:05');

    // The fix's checks pass; no webhook this time: the poll finds them.
    const fixed = await h.taskAt(number, (s) => s === 'awaitingChecks', 'waiting for the checks of the fix');
    expect(fixed.context.implementation?.commit).not.toBe(record.context.implementation?.commit);
    await ciPasses(fixed, { webhook: false });
    const gate = await h.taskAt(number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
    expect(gate.context.facts.checksGreen).toBe(true);
    expect(gate.context.ci.fixAttempts).toBe(1);
    expect(jobsOf(taskId)).toHaveLength(2);
    expect(deployed).toEqual([]);
    await waitFor('the status comment to show the checks passed', async () => (statusOf(number, taskId).includes('**Checks:** checks passed on') ? true : undefined));
  }, 90_000);

  it('keeps waiting for checks across a restart of serve and the orchestrator, and goes on when they pass', async () => {
    const { number, record } = await taskWaitingForChecks('Fix the week parser');
    const taskId = record.context.taskId;

    await h.restart();

    expect((await h.client.get(taskId)).state).toBe('awaitingChecks');
    await ciPasses(record);
    const gate = await h.taskAt(number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate after the restart');
    expect(gate.context.ci.note).toContain('checks passed on');
    expect(jobsOf(taskId)).toHaveLength(1);
  }, 90_000);

  it("sends a failing commit status (a CI that is no check run) back to the coder with its description", async () => {
    const { number, record } = await taskWaitingForChecks('Fix the duration parser');
    const taskId = record.context.taskId;
    const commit = record.context.implementation?.commit ?? '';
    await h.github.setCheck(OWNER, REPO, commit, 'test', { conclusion: 'success', app: 'github-actions', log: 'ok\n' });
    await h.github.setStatus(OWNER, REPO, commit, 'ci/jenkins', 'failure', 'integration: 2 of 40 failed (durations)');

    await h.send('status', commitStatus({ ...repo, sha: commit, branches: [record.context.branch], context: 'ci/jenkins', state: 'failure', description: 'integration: 2 of 40 failed (durations)' }));

    const second = await waitFor('a coder job for the failed status', async () => jobsOf(taskId)[1]);
    expect(second.feedback.at(-1)).toContain('ci/jenkins');
    expect(second.feedback.at(-1)).toContain('integration: 2 of 40 failed (durations)');
    const fixed = await h.taskAt(number, (s) => s === 'awaitingChecks', 'waiting for the checks of the fix');
    const fix = fixed.context.implementation?.commit ?? '';
    expect(fix).not.toBe(commit);
    await h.github.setStatus(OWNER, REPO, fix, 'ci/jenkins', 'success', 'integration: 40 passed');
    await ciPasses(fixed);
    await h.taskAt(number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
    expect(jobsOf(taskId)).toHaveLength(2);
  }, 90_000);

  it("stops and asks a person when the same failure comes twice in a row, saying why; the person's pushed fix is reviewed and checked, and the task goes on", async () => {
    const { number, record } = await taskWaitingForChecks('Fix the time parser');
    const taskId = record.context.taskId;
    await ciFails(number, record);
    const again = await waitFor('the fix waiting for checks', async () => {
      const r = (await h.tasksFor(number)).at(-1);
      return r?.state === 'awaitingChecks' && r.context.implementation?.commit !== record.context.implementation?.commit ? r : undefined;
    });
    await ciFails(number, again);
    const held = await h.taskAt(number, (s) => s === 'awaitingReviewApproval', 'at the review gate');
    expect(held.context.ci.note).toContain('the same failure twice in a row (test)');
    await waitFor('the status comment to say why', async () => (statusOf(number, taskId).includes('the same failure twice in a row') ? true : undefined));
    expect(jobsOf(taskId)).toHaveLength(2);
    expect(deployed).toEqual([]);

    // A person fixes it on the branch; GitHub tells serve of the push.
    const branch = held.context.branch;
    const before = held.context.head ?? '';
    const fix = await h.github.commitFiles(OWNER, REPO, { 'parse.js': 'export const parse = () => 42;\n' }, { branch, message: 'Fix the time parser by hand' });
    const pr = [...fakeRepo().issues.values()].find((i) => i.pull?.head === branch);
    await h.send('pull_request', pullRequestSynchronize({ ...repo, number: pr?.number ?? 0, head: branch, before, after: fix, sender: WRITER }));
    const checking = await h.taskAt(number, (s) => s === 'awaitingChecks', "waiting for the checks of the person's fix");
    expect(checking.context.head).toBe(fix);
    expect(checking.context.stages.filter((st) => st.stage === 'review')).toHaveLength(3);
    await h.github.setCheck(OWNER, REPO, fix, 'test', { conclusion: 'success', app: 'github-actions', log: 'ok\n' });
    await h.send('check_run', checkRunCompleted({ ...repo, branch, sha: fix, name: 'test', conclusion: 'success' }));
    const gate = await h.taskAt(number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
    expect(gate.context.ci.note).toBe(`checks passed on ${fix.slice(0, 7)}: test success`);
    expect(jobsOf(taskId)).toHaveLength(2);
    expect(deployed).toEqual([]);
  }, 120_000);

  it('does not try to fix checks that fail on the base branch too: it says the base is red and waits', async () => {
    await h.github.setCheck(OWNER, REPO, 'main', 'test', { conclusion: 'failure', app: 'github-actions', log: FAILING_LOG });
    try {
      const { number, record } = await taskWaitingForChecks('Fix the zone parser');
      const taskId = record.context.taskId;
      await ciFails(number, record);
      await waitFor('the status comment to say the base branch is red', async () => (statusOf(number, taskId).includes('the base branch is red: test fail on main too') ? true : undefined));
      const waiting = (await h.tasksFor(number)).at(-1);
      expect(waiting?.state).toBe('awaitingChecks');
      expect(waiting?.context.ci.fixAttempts).toBe(0);
      expect(jobsOf(taskId)).toHaveLength(1);

      // The base is fixed and the checks re-run green: the task goes on without a coder round.
      await ciPasses(record);
      await h.taskAt(number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
      expect(jobsOf(taskId)).toHaveLength(1);
    } finally {
      await h.github.setCheck(OWNER, REPO, 'main', 'test', { conclusion: 'success', app: 'github-actions' });
    }
  }, 90_000);
});
