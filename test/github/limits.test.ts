/**
 * Abuse and cost limits as GitHub users meet them: `stagegate serve` with limits set, over a
 * real nats-server, an orchestrator with canned agents and the fake GitHub. Every agent result
 * names the model `test-model`, priced so that one result (100 input tokens) costs $1.00. Each
 * test works in owners of its own, so their counts and spend never meet. Time is a clock of
 * the test's own (serve's limits and the agents' results both read it), moved by hand.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { STREAMS } from '../../core/bus/subjects.js';
import { openUsageBucket } from '../../core/bus/topology.js';
import type { TaskRecord } from '../../core/task-record.js';
import { spentOn, utcDay } from '../../orchestrator/limits/spend-ledger.js';
import { cannedHandlers } from '../helpers/canned-agents.js';
import { BOT, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { issueCommentCreated, issueLabeled } from '../helpers/github-webhooks.js';
import { waitFor } from '../helpers/wait-for.js';

const BASE = Date.parse('2030-05-01T00:30:00.000Z');
const started = Date.now();
let offsetMs = 0;
const now = () => new Date(BASE + (Date.now() - started) + offsetMs);
const HOUR = 3_600_000;

let h: GitHubServeHarness;
let usage: KV;

beforeAll(async () => {
  h = await startGitHubServe({
    now,
    model: 'test-model',
    settings: {
      model: { pricing: { 'test-model': { inputPerMTok: 10_000, cachedInputPerMTok: 0, outputPerMTok: 0 } } },
      limits: { triggersPerUser: 2, triggersPerRepo: 3, windowMs: HOUR, dailySpendUsdPerRepo: 2, dailySpendUsdPerOrg: 3 },
    },
    agents: {
      planner: async (job, ctx) => {
        if (job.type === 'plan.request' && job.task.title.includes('[fails]')) throw new Error('the model timed out');
        return cannedHandlers.planner(job, ctx);
      },
    },
  });
  usage = await openUsageBucket(h.nc);
});

afterEach(() => {
  h.github.assertNoUnexpected();
});

afterAll(async () => {
  await h?.stop();
});

interface Issue {
  owner: string;
  repo: string;
  number: number;
}

async function repoOf(owner: string, repo: string) {
  if (h.github.state.repo(owner, repo) === undefined) await h.github.addRepo({ owner, repo });
}

/** A new issue in owner/repo, labelled `stagegate` by `sender`: the delivery's answer. */
async function label(owner: string, repo: string, sender: string, title = 'Add a health endpoint'): Promise<Issue & { status: number }> {
  await repoOf(owner, repo);
  const issue = h.github.addIssue(owner, repo, { title, user: sender, labels: ['stagegate'] });
  return { owner, repo, number: issue.number, ...(await labelAgain({ owner, repo, number: issue.number }, sender, title)) };
}

async function labelAgain(issue: Issue, sender: string, title = 'Add a health endpoint'): Promise<{ status: number }> {
  const res = await h.send('issues', issueLabeled({ owner: issue.owner, repo: issue.repo, number: issue.number, label: 'stagegate', sender, title }));
  return { status: res.status };
}

async function tasksOf(issue: Issue): Promise<TaskRecord[]> {
  const records = (await h.client.list()).filter(
    (r) => r.context.spec.source?.owner === issue.owner && r.context.spec.source.repo === issue.repo && r.context.spec.source.issueNumber === issue.number,
  );
  return [...new Map(records.map((r) => [r.context.taskId, r])).values()];
}

const taskIn = (issue: Issue, state: string) =>
  waitFor(`the task of ${issue.owner}/${issue.repo}#${issue.number} to be ${state}`, async () => (await tasksOf(issue)).find((r) => r.state === state));

/** What our bot said on the issue, status comments aside. */
const repliesOn = (issue: Issue) =>
  (h.github.state.repo(issue.owner, issue.repo)?.comments ?? []).filter((c) => c.issueNumber === issue.number && c.user === BOT && c.body.startsWith('@')).map((c) => c.body);

/** The last message ever sent to the orchestrators: unchanged means a trigger sent nothing. */
const inboxSequence = async () => (await (await jetstreamManager(h.nc)).streams.info(STREAMS.inbox)).state.last_seq;

const nextHour = () => new Date((Math.floor(now().getTime() / HOUR) + 1) * HOUR).toISOString();
const nextDay = () => `${new Date(now().getTime() + 86_400_000).toISOString().slice(0, 10)}T00:00:00.000Z`;

/** Waits until the orchestrator has counted `usd` spent today on owner/repo (or all of owner's repositories). */
const spendReaches = (owner: string, repo: string, scope: 'repo' | 'org', usd: number) =>
  waitFor(`${scope === 'repo' ? `${owner}/${repo}` : owner} to have spent $${usd} today`, async () =>
    (await spentOn(usage, utcDay(now()), { repo: `${owner}/${repo}`, org: owner }, scope)) >= usd ? true : undefined,
  );

/** A task at the plan gate for a new issue of owner/repo: its planner's result has cost $1.00. */
async function planned(owner: string, repo: string, sender: string): Promise<Issue & { taskId: string }> {
  const issue = await label(owner, repo, sender);
  expect(issue.status).toBe(200);
  return { ...issue, taskId: (await taskIn(issue, 'awaitingPlanApproval')).context.taskId };
}

describe('GitHub triggers over a limit', () => {
  it("refuses a person's third label in the window with one comment naming the limit, and starts nothing", async () => {
    await planned('org-u', 'first', 'ursula');
    await planned('org-u', 'second', 'ursula');

    const sent = await inboxSequence();
    const third = await label('org-u', 'third', 'ursula');
    expect(third.status).toBe(200);
    expect(repliesOn(third)).toEqual([
      `@ursula Stagegate did not start a task for this issue: limit reached: github:ursula may start 2 tasks per hour (limits.triggersPerUser) and has started 2; it resets at ${nextHour()}. Nothing was started.`,
    ]);
    expect(await tasksOf(third)).toEqual([]);

    // Labelled again before the reset: still refused, and not told twice.
    expect((await labelAgain(third, 'ursula')).status).toBe(200);
    expect(repliesOn(third)).toHaveLength(1);
    expect(await tasksOf(third)).toEqual([]);
    expect(await inboxSequence()).toBe(sent);

    // Someone else's label on the same repository is not held to ursula's count.
    const other = await planned('org-u', 'third', 'victor');
    expect(repliesOn(other)).toEqual([]);
  });

  it('starts the refused task once the window has passed', async () => {
    await planned('org-w', 'app', 'wanda');
    await planned('org-w', 'app', 'wanda');
    const blocked = await label('org-w', 'other', 'wanda');
    expect(repliesOn(blocked)[0]).toContain('limits.triggersPerUser');
    expect(await tasksOf(blocked)).toEqual([]);

    offsetMs += HOUR;
    expect((await labelAgain(blocked, 'wanda')).status).toBe(200);
    await taskIn(blocked, 'awaitingPlanApproval');
    expect(repliesOn(blocked)).toHaveLength(1);
  });

  it("refuses a repository's fourth start in the window, whoever asks, with a comment", async () => {
    // Planners that fail spend nothing, so only the count of starts can refuse here.
    for (const sender of ['pat', 'quinn', 'rosa']) await taskIn(await label('org-r', 'busy', sender, 'Add a cache [fails]'), 'failed');
    const sent = await inboxSequence();
    const fourth = await label('org-r', 'busy', 'sam');
    expect(repliesOn(fourth)).toEqual([
      `@sam Stagegate did not start a task for this issue: limit reached: org-r/busy may have 3 task starts per hour (limits.triggersPerRepo) and has had 3; it resets at ${nextHour()}. Nothing was started.`,
    ]);
    expect(await tasksOf(fourth)).toEqual([]);
    expect(await inboxSequence()).toBe(sent);
  });

  it("refuses a start once the repository's model spend today reached its cap, priced from the agents' usage", async () => {
    await planned('org-s', 'pricey', 'tom');
    await planned('org-s', 'pricey', 'uma');
    await spendReaches('org-s', 'pricey', 'repo', 2);
    const sent = await inboxSequence();
    const third = await label('org-s', 'pricey', 'vera');
    expect(repliesOn(third)).toEqual([
      `@vera Stagegate did not start a task for this issue: limit reached: org-s/pricey may spend $2.00 on models per UTC day (limits.dailySpendUsdPerRepo) and has spent $2.00 today; it resets at ${nextDay()}. Nothing was started.`,
    ]);
    expect(await tasksOf(third)).toEqual([]);
    expect(await inboxSequence()).toBe(sent);
  });

  it("refuses a start on any repository of an owner whose spend today reached the owner's cap", async () => {
    await planned('org-o', 'x', 'xena');
    await planned('org-o', 'y', 'yuri');
    await planned('org-o', 'y', 'zack');
    await spendReaches('org-o', 'z', 'org', 3);
    const sent = await inboxSequence();
    const fresh = await label('org-o', 'z', 'abe');
    expect(repliesOn(fresh)).toEqual([
      `@abe Stagegate did not start a task for this issue: limit reached: the repositories of org-o may spend $3.00 on models per UTC day (limits.dailySpendUsdPerOrg) and have spent $3.00 today; it resets at ${nextDay()}. Nothing was started.`,
    ]);
    expect(await tasksOf(fresh)).toEqual([]);
    expect(await inboxSequence()).toBe(sent);
  });

  it('refuses /retry of a failed task by someone over their limit, once, and the task stays failed', async () => {
    await repoOf('org-t', 'flaky');
    h.github.setPermission('org-t', 'flaky', 'bea', 'write');
    const failing = await label('org-t', 'flaky', 'bea', 'Add a cache [fails]');
    const failed = await taskIn(failing, 'failed');
    await planned('org-t', 'flaky', 'bea');

    const sent = await inboxSequence();
    for (let i = 0; i < 2; i++) {
      const res = await h.send('issue_comment', issueCommentCreated({ owner: 'org-t', repo: 'flaky', number: failing.number, body: '/retry', user: 'bea' }));
      expect(res.status).toBe(200);
    }
    expect(repliesOn(failing)).toEqual([
      `@bea Stagegate did not start task \`${failed.context.taskId}\` again: limit reached: github:bea may start 2 tasks per hour (limits.triggersPerUser) and has started 2; it resets at ${nextHour()}. Nothing was started.`,
    ]);
    expect(await inboxSequence()).toBe(sent);
    const after = await h.client.get(failed.context.taskId);
    expect(after.state).toBe('failed');
    expect(after.context.attempts.plan).toBe(1);
  });
});
