import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueLabeled } from '../helpers/github-webhooks.js';
import { OWNER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { waitFor } from '../helpers/wait-for.js';
import { statusMarker } from '../../orchestrator/github/status-comment.js';

// The harness's env names the approvers (`github-permission:write`); the file adds the timer.
const writers = { approvers: ['github-permission:write'], required: 1 };
let h: GitHubServeHarness;

const commentsOn = (issueNumber: number) => {
  const repo = h.github.state.repo(OWNER, REPO);
  if (repo === undefined) throw new Error(`the fake has no repository ${OWNER}/${REPO}`);
  return repo.comments.filter((c) => c.issueNumber === issueNumber);
};

beforeAll(async () => {
  h = await startGitHubServe({
    gates: {
      plan: { ...writers, timeout: { remindAfterMs: 300, expireAfterMs: 600_000, onExpire: 'cancel' } },
      review: writers,
      deploy: writers,
    },
  });
});

afterAll(async () => {
  await h?.stop();
});

describe('GitHub gate reminders', () => {
  it('re-posts a reminder on the issue, mentioning who may decide, once per reminder timer', async () => {
    const issue = h.github.addIssue(OWNER, REPO, { title: 'Add a health endpoint', user: WRITER, labels: ['stagegate'] });
    await h.send('issues', issueLabeled({ owner: OWNER, repo: REPO, number: issue.number, label: 'stagegate', sender: WRITER, title: 'Add a health endpoint' }));
    const task = await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');

    const reminders = await waitFor('a reminder comment', async () => {
      const found = commentsOn(issue.number).filter((c) => c.body.includes('⏰ Reminder'));
      return found.length > 0 ? found : undefined;
    });
    expect(reminders).toHaveLength(1);
    expect(reminders[0]?.body).toContain(`task \`${task.context.taskId}\` is still waiting at the **plan** gate`);
    expect(reminders[0]?.body).toContain('Who may decide: `github-permission:write`');
    expect(reminders[0]?.body).toContain('`/approve [comment]`');

    // The timer fired once: the status comment was edited, the reminder not posted again.
    const log = [];
    for await (const entry of h.client.logs(task.context.taskId)) log.push(entry);
    expect(log.filter((e) => e.type === 'task.event' && e.event.type === 'gate.timer_fired')).toHaveLength(1);
    expect(commentsOn(issue.number).filter((c) => c.body.includes('⏰ Reminder'))).toHaveLength(1);
  });

  it('posts the status comment on the next event when posting it failed once, instead of waiting out the claim', async () => {
    h.github.failNext('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { status: 502, times: 1 });
    const issue = h.github.addIssue(OWNER, REPO, { title: 'Add a version endpoint', user: WRITER, labels: ['stagegate'] });
    await h.send('issues', issueLabeled({ owner: OWNER, repo: REPO, number: issue.number, label: 'stagegate', sender: WRITER, title: 'Add a version endpoint' }));
    const task = await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
    const status = await waitFor('the status comment', async () =>
      commentsOn(issue.number).find((c) => c.body.startsWith(statusMarker(task.context.taskId))),
    10_000);
    expect(status.body).toContain('Add a version endpoint');
  });
});
