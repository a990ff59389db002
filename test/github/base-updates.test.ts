/**
 * The base branch moving under a task's pull request, over a real nats-server, the orchestrator
 * and serve in-process, the fake GitHub and real git. The coder is an in-process stand-in that
 * works like the real one through the gateway, using its real merge and rebase code
 * (`branch-update.ts`) and resolving the conflicts the test makes; the model's part is covered by
 * the coder's own tests. A person's commit on the branch is made on GitHub (as the web editor
 * does). With `update.strategy: rebase` in the repository's settings, the gateway lets the rebase
 * replace the branch, and refuses a replacement that would drop a person's commit (a stand-in
 * that rebases anyway plays a compromised coder).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { commitMerge, continueRebase, foreignCommitsOn, mergeFromBase, rebaseOntoBase, type UpdateOutcome } from '../../agents/coder/branch-update.js';
import type { DeployRequest, ImplementRequest, ReviewRequest } from '../../core/bus/messages.js';
import { git as gitIn } from '../../core/git/git.js';
import { cloneForJob, remoteBranchExists } from '../../core/git/workspace.js';
import { cloneFromFake } from '../helpers/github-git.js';
import { statusMarker } from '../../orchestrator/github/status-comment.js';
import { git, isAncestor } from '../fakes/github/bare-repo.js';
import { oneCall } from '../helpers/canned-agents.js';
import { OWNER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { issueCommentCreated, issueLabeled, pullRequestSynchronize, pushed } from '../helpers/github-webhooks.js';
import { waitFor } from '../helpers/wait-for.js';

const RESOLVED = "export const greet = () => 'hello, merged';\n";
const WRITER_TOKEN = 'ghp_wendy_writer_token_0004';
/** A task with this in its title rebases even over a person's commit, as a compromised coder could. */
const OVER_PEOPLE = 'over people';

let h: GitHubServeHarness;
let work: string;
const coderJobs: ImplementRequest[] = [];
const reviewJobs: ReviewRequest[] = [];
const deployJobs: DeployRequest[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sg-base-updates-test-'));
  h = await startGitHubServe({
    agents: {
      coder: async (job) => {
        coderJobs.push(job);
        const ws = await cloneForJob({ repo: job.task.repo, workDir: work, taskId: job.taskId, name: `implement-${job.attempt}` });
        const resumes = await remoteBranchExists(ws, job.branch);
        await ws.git(['checkout', '--quiet', '-B', job.branch, `origin/${resumes ? job.branch : job.task.base}`]);
        const foreign = resumes ? await foreignCommitsOn(ws, `origin/${job.task.base}`) : [];
        const lease = (await ws.git(['rev-parse', 'HEAD'])).trim();
        const rebasing = job.update?.strategy === 'rebase' && (foreign.length === 0 || job.task.title.includes(OVER_PEOPLE));
        if (job.update === undefined) {
          await writeFile(join(ws.dir, 'greet.js'), `export const greet = () => 'hi ${job.taskId}';\n`);
          await ws.git(['add', '--all']);
          await ws.git(['commit', '--quiet', '-m', `Round ${job.round}`]);
        } else if (rebasing) {
          let step: UpdateOutcome = await rebaseOntoBase(ws, job);
          while (step.kind === 'conflicts') {
            await writeFile(join(ws.dir, 'greet.js'), RESOLVED);
            step = await continueRebase(ws);
          }
        } else if ((await mergeFromBase(ws, job)).kind === 'conflicts') {
          await writeFile(join(ws.dir, 'greet.js'), RESOLVED);
          await commitMerge(ws, job);
        }
        const ref = `refs/heads/${job.branch}`;
        const pushedOut = await ws.git(['push', '--quiet', ...(rebasing ? [`--force-with-lease=${ref}:${lease}`] : []), 'origin', `HEAD:${ref}`]).then(
          () => undefined,
          (err: unknown) => String(err),
        );
        if (pushedOut !== undefined) return { type: 'job.failed', stage: 'implement', reason: pushedOut, usage: oneCall };
        const commit = (await ws.git(['rev-parse', 'HEAD'])).trim();
        await ws.remove();
        return { type: 'code.committed', branch: job.branch, commit, summary: job.update === undefined ? 'greet()' : 'updated from main', attempts: 1, usage: oneCall, ...(foreign.length === 0 ? {} : { foreignCommits: foreign }) };
      },
      reviewer: async (job) => {
        reviewJobs.push(job);
        return { type: 'review.approved', testsPassed: true, verdict: { decision: 'approve', summary: 'fine', comments: [] }, usage: oneCall };
      },
      deployer: async (job) => {
        deployJobs.push(job);
        return { type: 'deploy.succeeded', commit: job.commit, target: 'main', usage: oneCall };
      },
    },
  });
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
/** Pushes that replaced `branch` (not fast-forwards), by anyone but the people in these tests. */
const forcedPushesTo = (branch: string) =>
  h.github.pushes.filter((p) => p.user !== WRITER).flatMap((p) => p.updates).filter((u) => u.forced && u.ref === `refs/heads/${branch}`);
const statusOf = (number: number, taskId: string) => fakeRepo().comments.find((c) => c.issueNumber === number && c.body.startsWith(statusMarker(taskId)))?.body ?? '';
const branchHead = async (branch: string) => (await git(fakeRepo().dir, ['rev-parse', `refs/heads/${branch}`])).trim();
const of = <T extends { taskId: string }>(jobs: T[], taskId: string) => jobs.filter((j) => j.taskId === taskId);

/** An issue labelled, its plan approved, its code pushed and reviewed: the task waits at the deploy gate (maintainers only) with its pull request open. */
async function taskAtDeployGate(title: string) {
  const issue = h.github.addIssue(OWNER, REPO, { title, user: WRITER });
  await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title }));
  await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
  await h.send('issue_comment', issueCommentCreated({ ...repo, number: issue.number, body: '/approve', user: WRITER }));
  const record = await h.taskAt(issue.number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
  const pr = await waitFor('the pull request', async () => [...fakeRepo().issues.values()].find((i) => i.pull?.head === record.context.branch));
  return { number: issue.number, taskId: record.context.taskId, branch: record.context.branch, head: record.context.head ?? '', pr };
}

/** A commit on main, and GitHub's push delivery for it. */
async function advanceMain(files: Record<string, string>, message: string): Promise<string> {
  const before = await branchHead('main');
  const after = await h.github.commitFiles(OWNER, REPO, files, { message });
  const res = await h.send('push', pushed({ ...repo, branch: 'main', before, after, sender: WRITER }));
  expect(res.status).toBe(200);
  expect(res.json).toMatchObject({ work: 'read the pull requests of tasks based on main' });
  return after;
}

describe('base branch updates', () => {
  it('merges a conflicting base into the branch, keeps a person\'s commit, reviews again, and never force-pushes', async () => {
    const { number, taskId, branch, head, pr } = await taskAtDeployGate('Base: conflicting change');
    // A person edits the branch on GitHub; the pull request's synchronize tells serve.
    const human = await h.github.commitFiles(OWNER, REPO, { 'NOTES.md': 'by hand\n' }, { branch, message: 'Add notes by hand' });
    await h.send('pull_request', pullRequestSynchronize({ ...repo, number: pr.number, head: branch, before: head, after: human, sender: WRITER }));
    await waitFor('the task to see the person\'s push', async () => ((await h.client.get(taskId)).context.head === human ? true : undefined));
    expect(of(coderJobs, taskId).filter((j) => j.update !== undefined)).toEqual([]);

    const base = await advanceMain({ 'greet.js': "export const greet = () => 'hello';\n" }, 'Greet differently on main');

    const record = await waitFor('the task to be updated and back at the deploy gate', async () => {
      const r = await h.client.get(taskId);
      return r.state === 'awaitingDeployApproval' && r.context.head !== human ? r : undefined;
    });
    const update = of(coderJobs, taskId).filter((j) => j.update !== undefined);
    expect(update).toHaveLength(1);
    expect(update[0]?.update).toEqual({ baseSha: base, conflicts: true });
    const merged = record.context.head ?? '';
    expect(await branchHead(branch)).toBe(merged);
    expect(await isAncestor(fakeRepo().dir, human, merged)).toBe(true);
    expect(await isAncestor(fakeRepo().dir, base, merged)).toBe(true);
    expect(await git(fakeRepo().dir, ['show', `${merged}:greet.js`])).toBe(RESOLVED.trim());
    expect(h.github.pushes.flatMap((p) => p.updates).filter((u) => u.forced)).toEqual([]);
    // The merged result (with the person's commit) is what the second review saw.
    expect(of(reviewJobs, taskId).map((j) => j.commit)).toEqual([head, merged]);
    expect(record.context.foreignCommits).toEqual([{ sha: human, author: 'GitHub <noreply@github.com>', subject: 'Add notes by hand' }]);
    const body = await waitFor('the status comment to name the person\'s commit', async () => {
      const b = statusOf(number, taskId);
      return b.includes('Commits by people') ? b : undefined;
    });
    expect(body).toContain(`GitHub pushed 1 commit (\`${human.slice(0, 7)}\` Add notes by hand); it is kept (never overwritten) and goes into the next review.`);
    expect(of(deployJobs, taskId)).toEqual([]);
  });

  it('leaves a task alone when the base moves without a conflict', async () => {
    const { taskId, head } = await taskAtDeployGate('Base: unrelated change');
    const jobsBefore = of(coderJobs, taskId).length;

    await advanceMain({ 'docs/unrelated.md': 'nothing to do with greet\n' }, 'Unrelated docs');

    const record = await h.client.get(taskId);
    expect(record.state).toBe('awaitingDeployApproval');
    expect(record.context.head).toBe(head);
    expect(record.context.update).toBeNull();
    expect(of(coderJobs, taskId)).toHaveLength(jobsBefore);
  });

  describe('with update.strategy: rebase in .github/stagegate.yml', () => {
    beforeAll(async () => {
      await h.github.commitFiles(OWNER, REPO, { '.github/stagegate.yml': 'update:\n  strategy: rebase\n' }, { message: 'Rebase task branches' });
      h.github.addUserToken(WRITER_TOKEN, WRITER);
    });

    it('rebases the branch onto a conflicting base: a straight line on main, replacing only Stagegate\'s commits', async () => {
      const { taskId, branch, head } = await taskAtDeployGate('Base: rebased change');

      const base = await advanceMain({ 'greet.js': "export const greet = () => 'hello again';\n" }, 'Greet again on main');

      const record = await waitFor('the task to be rebased and back at the deploy gate', async () => {
        const r = await h.client.get(taskId);
        return r.state === 'awaitingDeployApproval' && r.context.head !== head ? r : undefined;
      });
      expect(of(coderJobs, taskId).filter((j) => j.update !== undefined).map((j) => j.update)).toEqual([{ baseSha: base, conflicts: true, strategy: 'rebase' }]);
      const rebased = record.context.head ?? '';
      expect(await branchHead(branch)).toBe(rebased);
      // Stagegate's one commit, replayed on main's head: no merge commit, the old tip no longer on the branch.
      expect((await git(fakeRepo().dir, ['rev-parse', `${rebased}~1`]))).toBe(base);
      expect(await isAncestor(fakeRepo().dir, head, rebased)).toBe(false);
      expect(await git(fakeRepo().dir, ['show', `${rebased}:greet.js`])).toBe(RESOLVED.trim());
      expect(forcedPushesTo(branch)).toEqual([expect.objectContaining({ before: head, after: rebased, applied: true })]);
      expect(of(reviewJobs, taskId).map((j) => j.commit)).toEqual([head, rebased]);
    });

    it('refuses, at the gateway, a rebase that would push over a person\'s commit, and the branch keeps it', async () => {
      const { number, taskId, branch, head, pr } = await taskAtDeployGate(`Base: rebased ${OVER_PEOPLE}`);
      const human = await h.github.commitFiles(OWNER, REPO, { 'NOTES.md': 'kept by hand\n' }, { branch, message: 'Keep notes by hand' });
      await h.send('pull_request', pullRequestSynchronize({ ...repo, number: pr.number, head: branch, before: head, after: human, sender: WRITER }));
      await waitFor('the task to see the person\'s push', async () => ((await h.client.get(taskId)).context.head === human ? true : undefined));

      await advanceMain({ 'greet.js': "export const greet = () => 'hello once more';\n" }, 'Greet once more on main');

      const record = await h.taskAt(number, (s) => s === 'failed', 'failed after the refused push');
      expect(record.context.error?.reason).toMatch(
        new RegExp(`\\[remote rejected\\].*\\(the push would drop a commit Stagegate did not make \\(${human.slice(0, 10)} by noreply@github\\.com\\): a person's commits are never pushed over\\)`),
      );
      expect(await branchHead(branch)).toBe(human);
      // (Other tasks at the deploy gate are rebased onto the same new main meanwhile: only this branch counts.)
      expect(forcedPushesTo(branch)).toEqual([]);
    });

    it("refuses, at the gateway, a rebase that would drop Stagegate's commit once a person amended it", async () => {
      const { number, branch, head, pr } = await taskAtDeployGate(`Base: amended ${OVER_PEOPLE}`);
      // The person rewords Stagegate's commit: its author stays Stagegate, its committer is now them.
      const wc = await cloneFromFake(h.github, { ...repo, token: WRITER_TOKEN });
      await wc.git(['checkout', '--quiet', '-B', branch, `origin/${branch}`]);
      await gitIn(['commit', '--quiet', '--amend', '-m', 'Greet, reworded by hand'], { cwd: wc.dir, env: { GIT_COMMITTER_NAME: 'Wendy', GIT_COMMITTER_EMAIL: 'wendy@example.com' } });
      const amended = (await wc.git(['rev-parse', 'HEAD'])).trim();
      await wc.push(branch, { force: true });
      await wc.cleanup();
      await h.send('pull_request', pullRequestSynchronize({ ...repo, number: pr.number, head: branch, before: head, after: amended, sender: WRITER }));

      await advanceMain({ 'greet.js': "export const greet = () => 'hello at last';\n" }, 'Greet at last on main');

      const record = await h.taskAt(number, (s) => s === 'failed', 'failed after the refused push');
      expect(record.context.error?.reason).toContain(`(the push would drop a commit Stagegate did not make (${amended.slice(0, 10)} by wendy@example.com): a person's commits are never pushed over)`);
      expect(await branchHead(branch)).toBe(amended);
      expect(forcedPushesTo(branch)).toEqual([]);
    });
  });
});
