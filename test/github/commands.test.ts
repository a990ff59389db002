/**
 * Comment commands and the living status comment, over a real nats-server, an orchestrator
 * with canned agents (a planner that fails once on titles with `[flaky]`) and the fake GitHub.
 * The plan and review gates take `github-permission:write`, the deploy gate `…:maintain`, so a
 * writer's task passes the plan gate and stops at the deploy gate.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../core/task-record.js';
import { statusMarker } from '../../orchestrator/github/status-comment.js';
import type { FakeComment } from '../fakes/github/state.js';
import { git } from '../fakes/github/bare-repo.js';
import { addIssue } from '../fakes/github/issues.js';
import { cannedHandlers } from '../helpers/canned-agents.js';
import { BOT, OWNER, READER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { issueCommentCreated, issueLabeled, pullRequestOpened } from '../helpers/github-webhooks.js';
import { waitFor } from '../helpers/wait-for.js';

let h: GitHubServeHarness;

beforeAll(async () => {
  h = await startGitHubServe({
    agents: {
      planner: async (job, ctx) => {
        if (job.type === 'plan.request' && job.task.title.includes('[flaky]') && job.attempt === 1) throw new Error('the model timed out');
        return cannedHandlers.planner(job, ctx);
      },
    },
  });
});

afterEach(() => {
  h.github.assertNoUnexpected();
});

afterAll(async () => {
  await h?.stop();
});

const repo = { owner: OWNER, repo: REPO };
const fakeRepo = () => {
  const r = h.github.state.repo(OWNER, REPO);
  if (r === undefined) throw new Error('no acme/app in the fake');
  return r;
};
const commentsOn = (issueNumber: number): FakeComment[] => fakeRepo().comments.filter((c) => c.issueNumber === issueNumber);
const statusCommentsOf = (issueNumber: number, taskId: string) => commentsOn(issueNumber).filter((c) => c.body.startsWith(statusMarker(taskId)));
const repliesTo = (issueNumber: number, login: string) => commentsOn(issueNumber).filter((c) => c.user === BOT && c.body.startsWith(`@${login} `));
const stateLabels = (issueNumber: number) => (fakeRepo().issues.get(issueNumber)?.labels ?? []).filter((l) => l.startsWith('stagegate:'));

function comment(number: number, body: string, user = WRITER, extra: { userType?: string; onPullRequest?: boolean } = {}) {
  return h.send('issue_comment', issueCommentCreated({ ...repo, number, body, user, ...extra }));
}

/** A pull request in the fake from branch `head` (made at the default branch's commit). */
async function openPull(head: string, user = BOT) {
  const r = fakeRepo();
  const sha = (await git(r.dir, ['rev-parse', r.defaultBranch])).trim();
  await git(r.dir, ['branch', '-f', head, sha]);
  return addIssue({ state: h.github.state }, r, {
    title: `Pull from ${head}`,
    body: null,
    user,
    pull: { head, base: r.defaultBranch, draft: false, merged: false, mergedAt: null, mergedBy: null, mergeCommitSha: null, lastHeadSha: sha },
  });
}

/** An issue labelled stagegate whose task waits at the plan gate, its status comment showing that. */
async function taskAtPlanGate(title = 'Add a health endpoint'): Promise<{ number: number; taskId: string }> {
  const issue = h.github.addIssue(OWNER, REPO, { title, body: 'GET /health returns 200', user: WRITER, labels: ['stagegate'] });
  const res = await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title }));
  expect(res.status).toBe(200);
  const record = await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
  const taskId = record.context.taskId;
  await waitFor('the status comment at the plan gate', async () => (statusCommentsOf(issue.number, taskId)[0]?.body.includes('Waiting at the plan gate') ? true : undefined));
  return { number: issue.number, taskId };
}

const stateOf = async (taskId: string): Promise<TaskRecord> => h.client.get(taskId);

describe('GitHub comment commands', () => {
  it('moves the task on /approve by a writer at the plan gate, and says so in a reply', async () => {
    const { number, taskId } = await taskAtPlanGate();
    const res = await comment(number, '/approve looks right');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'handled', work: 'command /approve' });
    const record = await stateOf(taskId);
    expect(record.state).not.toBe('awaitingPlanApproval');
    expect(record.context.decisions[0]).toMatchObject({
      gate: 'plan',
      decision: 'approve',
      by: `github:${WRITER}`,
      via: 'github',
      comment: 'looks right',
      counted: true,
      principal: { permission: 'write' },
    });
    const [reply] = repliesTo(number, WRITER);
    expect(reply?.body).toBe(`@${WRITER} approved the plan gate: task \`${taskId}\` is now implementing.`);
  });

  it('answers /approve by a reader with a polite refusal, and the task stays', async () => {
    const { number, taskId } = await taskAtPlanGate();
    const res = await comment(number, '/approve', READER);
    expect(res.status).toBe(200);
    const [reply] = repliesTo(number, READER);
    expect(reply?.body).toBe(
      `@${READER} thanks — Stagegate takes commands only from people with write permission or more on ${OWNER}/${REPO}, and yours is read. Nothing changed.`,
    );
    const record = await stateOf(taskId);
    expect(record.state).toBe('awaitingPlanApproval');
    expect(record.context.decisions).toEqual([]);
  });

  it.each([
    ['a Bot account', 'dependabot', 'Bot'],
    ['a [bot] login', 'renovate[bot]', 'User'],
    ['Stagegate itself', BOT, 'User'],
  ])('does nothing at all for /approve by %s: no decision, no reply', async (_who, login, userType) => {
    const { number, taskId } = await taskAtPlanGate();
    const before = h.github.requests.length;
    const res = await comment(number, '/approve', login, { userType });
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ status: 'ignored', reason: 'a comment by a bot' });
    expect((await stateOf(taskId)).state).toBe('awaitingPlanApproval');
    expect(h.github.requests.slice(before).filter((r) => r.method === 'POST' && r.path.endsWith(`/issues/${number}/comments`))).toEqual([]);
  });

  it('ignores comments that are not commands', async () => {
    const { number } = await taskAtPlanGate();
    const res = await comment(number, 'I think we should /approve this later');
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ status: 'ignored', reason: 'not a command' });
  });

  it('answers a command on an issue with no task', async () => {
    const issue = h.github.addIssue(OWNER, REPO, { title: 'Unrelated', user: WRITER });
    const res = await comment(issue.number, '/approve');
    expect(res.status).toBe(200);
    const [reply] = repliesTo(issue.number, WRITER);
    expect(reply?.body).toBe(`@${WRITER} there is no Stagegate task for this issue. Add the \`stagegate\` label to start one. Nothing changed.`);
  });

  it('sends the plan back to the planner with the reason on /reject <reason>', async () => {
    const { number, taskId } = await taskAtPlanGate();
    const res = await comment(number, '/reject the plan forgets the tests');
    expect(res.status).toBe(200);
    const [reply] = repliesTo(number, WRITER);
    expect(reply?.body).toBe(`@${WRITER} rejected at the plan gate: task \`${taskId}\` is planning again, with your reason.`);
    const record = await waitFor('the plan gate reopened', async () => {
      const r = await stateOf(taskId);
      return r.state === 'awaitingPlanApproval' && r.context.gateVisits.plan === 2 ? r : undefined;
    });
    expect(record.context.planFeedback).toEqual(['the plan forgets the tests']);
    expect(record.context.decisions[0]).toMatchObject({ decision: 'reject', by: `github:${WRITER}`, comment: 'the plan forgets the tests', counted: true });
  });

  it('asks for a reason on /reject without one, and the task stays', async () => {
    const { number, taskId } = await taskAtPlanGate();
    await comment(number, '/reject');
    const [reply] = repliesTo(number, WRITER);
    expect(reply?.body).toBe(`@${WRITER} \`/reject\` needs a reason after it (\`/reject <reason>\`): it goes back to the agent. Nothing changed.`);
    expect((await stateOf(taskId)).context.decisions).toEqual([]);
  });

  it('answers a second /approve, written before the task reached its next gate, with who decided the first', async () => {
    const { number, taskId } = await taskAtPlanGate();
    const first = issueCommentCreated({ ...repo, number, body: '/approve', user: WRITER });
    const second = issueCommentCreated({ ...repo, number, body: '/approve', user: WRITER });
    await h.send('issue_comment', first);
    await h.taskAt(number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
    await h.send('issue_comment', second);
    expect((await stateOf(taskId)).context.decisions.filter((d) => d.gate === 'deploy')).toEqual([]);
    const replies = repliesTo(number, WRITER);
    expect(replies).toHaveLength(2);
    expect(replies[1]?.body).toMatch(new RegExp(`^@${WRITER} task ${taskId} is \\w+: its plan gate was already decided by github:${WRITER} via github \\(approved\\); nothing changed\\.$`));
  });

  it('answers /status with where the task stands', async () => {
    const { number, taskId } = await taskAtPlanGate();
    await comment(number, '/status');
    const [reply] = repliesTo(number, WRITER);
    expect(reply?.body).toContain(`@${WRITER} task \`${taskId}\` is **⏸️ Waiting for approval of the plan** (\`awaitingPlanApproval\`)`);
    expect(reply?.body).toContain('- Gate: plan, 0 of 1 approvals; `/approve` or `/reject <reason>`');
    expect(reply?.body).toContain('- plan #1: plan proposed');
  });

  it('cancels the task on /cancel, and the status comment and label say so', async () => {
    const { number, taskId } = await taskAtPlanGate();
    await comment(number, '/cancel not needed after all');
    expect(repliesTo(number, WRITER)[0]?.body).toBe(`@${WRITER} cancelling task \`${taskId}\`.`);
    const record = await waitFor('the task cancelled', async () => ((await stateOf(taskId)).state === 'cancelled' ? true : undefined));
    expect(record).toBe(true);
    await waitFor('the status comment to say cancelled', async () => (statusCommentsOf(number, taskId)[0]?.body.includes('**🚫 Cancelled**') ? true : undefined));
    expect(statusCommentsOf(number, taskId)[0]?.body).toContain(`**Cancelled:** cancelled by github:${WRITER}: not needed after all`);
    await waitFor('the cancelled label', async () => (stateLabels(number).join() === 'stagegate:cancelled' ? true : undefined));
  });

  it('says /retry is for failed tasks on a task that has not failed', async () => {
    const { number, taskId } = await taskAtPlanGate();
    await comment(number, '/retry');
    expect(repliesTo(number, WRITER)[0]?.body).toBe(
      `@${WRITER} task \`${taskId}\` is awaitingPlanApproval: \`/retry\` runs a failed stage again, and this task has not failed. Nothing changed.`,
    );
  });

  it('shows what failed and how to retry, and /retry runs the stage again', async () => {
    const issue = h.github.addIssue(OWNER, REPO, { title: 'Flaky [flaky]', user: WRITER });
    await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title: 'Flaky [flaky]' }));
    const failed = await h.taskAt(issue.number, (s) => s === 'failed', 'failed');
    const taskId = failed.context.taskId;
    const body = await waitFor('the status comment to say failed', async () => {
      const c = statusCommentsOf(issue.number, taskId)[0];
      return c?.body.includes('**❌ Failed**') ? c.body : undefined;
    });
    expect(body).toContain('**The plan stage failed:** the model timed out');
    expect(body).toContain('Comment `/retry` to run the plan stage again');
    await waitFor('the failed label', async () => (stateLabels(issue.number).join() === 'stagegate:failed' ? true : undefined));
    await comment(issue.number, '/retry');
    expect(repliesTo(issue.number, WRITER)[0]?.body).toBe(`@${WRITER} running the plan stage of task \`${taskId}\` again; the status comment follows it.`);
    await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate after the retry');
  });

  it('takes commands on the pull request of a Stagegate branch, and links it', async () => {
    const { number, taskId } = await taskAtPlanGate();
    const branch = (await stateOf(taskId)).context.branch;
    const pr = await openPull(branch);
    await comment(pr.number, '/status', WRITER, { onPullRequest: true });
    expect(repliesTo(pr.number, WRITER)[0]?.body).toContain(`@${WRITER} task \`${taskId}\` is`);
    await comment(pr.number, '/approve', WRITER, { onPullRequest: true });
    expect((await stateOf(taskId)).context.decisions[0]).toMatchObject({ by: `github:${WRITER}`, decision: 'approve' });
    await waitFor('the status comment to show the pull request', async () => (statusCommentsOf(number, taskId)[0]?.body.includes(`**Pull request:** #${pr.number}`) ? true : undefined));
  });

  it('answers a command on a pull request that belongs to no task', async () => {
    const pr = await openPull('feature/x', WRITER);
    await comment(pr.number, '/approve', WRITER, { onPullRequest: true });
    expect(repliesTo(pr.number, WRITER)[0]?.body).toBe(`@${WRITER} this pull request belongs to no Stagegate task, so there is nothing to do. Nothing changed.`);
  });
});

describe('GitHub status comment', () => {
  it('is created once and edited as the task moves, showing the plan checklist and the commands at a gate', async () => {
    const { number, taskId } = await taskAtPlanGate();
    const [created] = statusCommentsOf(number, taskId);
    expect(created?.user).toBe(BOT);
    expect(created?.body).toContain('### Stagegate: Add a health endpoint');
    expect(created?.body).toContain('- [ ] write it');
    expect(created?.body).toContain('**Waiting at the plan gate**: 0 of 1 approval; approvers `github-permission:write`');
    expect(created?.body).toContain('- `/approve` approves the plan; the coder starts');
    expect(created?.body).toContain('- `/reject <reason>` sends the plan back to the planner with your reason');

    await comment(number, '/approve');
    await h.taskAt(number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
    const body = await waitFor('the status comment at the deploy gate', async () => {
      const c = statusCommentsOf(number, taskId);
      return c.length === 1 && c[0]?.body.includes('Waiting at the deploy gate') ? c[0].body : undefined;
    });
    expect(statusCommentsOf(number, taskId)).toHaveLength(1);
    expect(statusCommentsOf(number, taskId)[0]?.id).toBe(created?.id);
    expect(body).toContain('- [x] write it');
    expect(body).toContain('- Round 1: approved');
    expect(body).toContain(`- plan gate: approved by github:${WRITER} via github`);
    expect(body).toContain('approvers `github-permission:maintain`');
    expect(body).toContain('- `/approve` approves the deploy');
    expect(body).toMatch(/\*\*Tokens:\*\* \d+ \(\d+ in, \d+ of them cached, \d+ out\) over 3 model calls/);
    expect(h.github.requestsTo('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', (r) => r.params.comment_id === String(created?.id)).length).toBeGreaterThan(0);
  });

  it('keeps exactly one stagegate:<state> label on the issue, beside the trigger label', async () => {
    const { number, taskId } = await taskAtPlanGate();
    await waitFor('the awaiting-approval label', async () => (stateLabels(number).join() === 'stagegate:awaiting-approval' ? true : undefined));
    await comment(number, '/approve');
    await h.taskAt(number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
    await waitFor('the label after the plan gate', async () => {
      const stored = await h.client.get(taskId);
      return stored.state === 'awaitingDeployApproval' && stateLabels(number).join() === 'stagegate:awaiting-approval' ? true : undefined;
    });
    const added = h.github
      .requestsTo('POST /repos/{owner}/{repo}/issues/{issue_number}/labels', (r) => r.params.issue_number === String(number))
      .map((r) => JSON.stringify(r.body));
    expect(added.length).toBeGreaterThan(0);
    expect(fakeRepo().issues.get(number)?.labels).toContain('stagegate');
    expect(stateLabels(number)).toHaveLength(1);
    expect(fakeRepo().labels.get('stagegate:awaiting-approval')?.color).toBe('fbca04');
  });

  it('shows the pull request once one is opened on the task branch', async () => {
    const { number, taskId } = await taskAtPlanGate();
    const branch = (await stateOf(taskId)).context.branch;
    const res = await h.send('pull_request', pullRequestOpened({ ...repo, number: 9_001, head: branch }));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ work: 'link the pull request to its task' });
    expect(statusCommentsOf(number, taskId)[0]?.body).toContain(`**Pull request:** #9001 (https://github.com/${OWNER}/${REPO}/pull/9001)`);
  });
});
