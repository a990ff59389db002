/**
 * Session digests reach the GitHub issue the session names, through `serve` (the process that
 * holds the GitHub token): a report when it pauses, digests on its schedule, and a report when
 * it stops, each posted once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionSpec } from '../../core/bus/session-messages.js';
import { createSessionClient, type SessionClient } from '../../orchestrator/sessions/session-client.js';
import { cannedHandlers, oneCall } from '../helpers/canned-agents.js';
import { OWNER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { waitFor } from '../helpers/wait-for.js';

let h: GitHubServeHarness;
let sessions: SessionClient;

const commentsOn = (issueNumber: number) => h.github.state.repo(OWNER, REPO)?.comments.filter((c) => c.issueNumber === issueNumber) ?? [];

beforeAll(async () => {
  h = await startGitHubServe({
    agents: {
      planner: async (job, ctx) =>
        job.type === 'backlog.request'
          ? { type: 'backlog.proposed', usage: oneCall, backlog: { summary: 'one step', items: [{ id: 'only', title: 'Only', body: 'do it', dependsOn: [] }] } }
          : cannedHandlers.planner(job, ctx),
    },
  });
  sessions = await createSessionClient(h.nc);
});

afterAll(async () => {
  await h?.stop();
});

describe('session digests on GitHub', () => {
  it('posts the pause report, scheduled digests and the stop report on the issue, once each', async () => {
    const issue = h.github.addIssue(OWNER, REPO, { title: 'Session: migrate to v2', user: WRITER, labels: [] });
    const spec: SessionSpec = {
      repo: '/tmp/not-cloned',
      goal: 'migrate to v2',
      base: 'main',
      submittedBy: WRITER,
      parallel: 1,
      budget: {},
      onBudget: 'finish',
      maxItemAttempts: 2,
      maxRevisions: 3,
      digestEveryMs: 400,
      digestTo: { github: { kind: 'github', owner: OWNER, repo: REPO, issueNumber: issue.number } },
      pricing: {},
      models: { planner: 'm', coder: 'm', reviewer: 'm', deployer: 'm' },
    };
    const manual = { approvers: [WRITER], required: 1, autoApprove: false };
    const sessionId = await sessions.start({ spec, policies: { plan: manual, review: manual, deploy: manual }, maxReviewRounds: 1 });
    await waitFor('the session to run', async () => ((await sessions.get(sessionId).catch(() => undefined))?.state === 'running' ? true : undefined));
    await sessions.pause(sessionId, WRITER, 'for the test');

    const bodies = () => commentsOn(issue.number).map((c) => c.body);
    await waitFor('the pause report and a scheduled digest', async () => {
      const posted = bodies();
      return posted.some((b) => b.includes('(paused)')) && posted.some((b) => /: paused\n/.test(b)) ? true : undefined;
    });
    await sessions.stop(sessionId, WRITER, 'done testing');
    await waitFor('the stop report', async () => (bodies().some((b) => b.includes('(stopped)')) ? true : undefined));

    const posted = bodies();
    expect(posted.filter((b) => b.includes('(paused)'))).toHaveLength(1);
    expect(posted.filter((b) => b.includes('(stopped)'))).toHaveLength(1);
    const stopReport = posted.find((b) => b.includes('(stopped)')) ?? '';
    expect(stopReport).toContain(`Stagegate session ${sessionId}`);
    expect(stopReport).toContain('Outcome: stopped by wendy-writer: done testing');
    expect(stopReport).toMatch(/Waiting for people[\s\S]*only .*the plan gate/);
    // No digest after the session ended.
    const count = posted.length;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(bodies()).toHaveLength(count);
  });
});
