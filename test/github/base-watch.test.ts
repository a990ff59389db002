/**
 * serve's base watch against the fake GitHub and real git: it reads the task's pull request
 * (again, while GitHub has not computed its mergeability) and tells the task when it conflicts
 * with its base or is behind a base that requires up-to-date branches, and only then: a clean
 * pull request, a head the task does not know, or a task at work send nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { InboxMessage, TaskSubmit } from '../../core/bus/messages.js';
import { GitHubConfig } from '../../core/config.js';
import { createGitHubClient } from '../../core/github/client.js';
import { createLogger } from '../../core/log.js';
import { TaskState, type TaskRecord } from '../../core/task-record.js';
import { checkBase, routeBasePush, type BaseWatchDeps } from '../../orchestrator/github/base-watch.js';
import { taskMachine, type TaskEvent } from '../../orchestrator/task-machine.js';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github/server.js';
import type { FakeRepo } from '../fakes/github/state.js';
import { pushed } from '../helpers/github-webhooks.js';

const log = createLogger({ level: 'silent' });
const TOKEN = 'ghp_base_watch_test_token_0001';
const TASK = 't-bw';
const BRANCH = `stagegate/${TASK}`;
const PULL_GET = 'GET /repos/{owner}/{repo}/pulls/{pull_number}';
const usage = { calls: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0 };

let fake: FakeGitHub;
let repo: FakeRepo;
let head: string;
let published: InboxMessage[];
let slept: number[];

beforeEach(async () => {
  fake = await startFakeGitHub({ userTokens: { [TOKEN]: 'stagegate-bot' } });
  repo = await fake.addRepo({ owner: 'acme', repo: 'app', files: { 'greet.js': "export const greet = 'hi';\n" } });
  fake.setPermission('acme', 'app', 'stagegate-bot', 'write');
  head = await fake.commitFiles('acme', 'app', { 'greet.js': "export const greet = 'hi there';\n" }, { branch: BRANCH, message: 'Greet warmly' });
  const client = createGitHubClient(GitHubConfig.parse({ token: TOKEN, apiUrl: fake.url, gitUrl: fake.gitUrl, paceWrites: false }), log);
  await client.octokit.rest.pulls.create({ owner: 'acme', repo: 'app', head: BRANCH, base: 'main', title: 'Greet warmly' });
  published = [];
  slept = [];
});

afterEach(async () => {
  fake.assertNoUnexpected();
  await fake.close();
});

type Snapshot = SnapshotFrom<typeof taskMachine>;
let clock = 0;
const next = () => ({ taskId: TASK, msgId: `m-${++clock}`, sentAt: new Date(Date.parse('2026-03-01T10:00:00.000Z') + clock * 1000).toISOString() });

/** The task at the deploy gate with `commit` as its head, or still implementing. */
function taskRecord(commit: string, at: 'deploy gate' | 'implementing' = 'deploy gate'): TaskRecord {
  const manual = { approvers: ['alice'], required: 1, autoApprove: false };
  const submit: TaskSubmit = {
    type: 'task.submit',
    ...next(),
    spec: { repo: 'https://example.invalid/acme/app.git', title: 'Greet warmly', body: '', base: 'main', submittedBy: 'alice', source: { kind: 'github', owner: 'acme', repo: 'app', issueNumber: 1 } },
    policies: { plan: manual, review: manual, deploy: manual },
    maxReviewRounds: 2,
  };
  const apply = (s: Snapshot, e: TaskEvent) => transition(taskMachine, s, e)[0];
  const job = (s: Snapshot) => s.context.currentJobId ?? 'none';
  let s = initialTransition(taskMachine, submit)[0];
  s = apply(s, { type: 'plan.proposed', ...next(), jobId: job(s), usage, plan: { summary: 'greet', steps: [{ title: 'greet', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] } });
  s = apply(s, { type: 'gate.decide', ...next(), gate: 'plan', decision: 'approve', by: 'alice', via: 'cli' });
  if (at === 'deploy gate') {
    s = apply(s, { type: 'code.committed', ...next(), jobId: job(s), usage, branch: BRANCH, commit, summary: 'greet', attempts: 1 });
    s = apply(s, { type: 'review.approved', ...next(), jobId: job(s), usage, verdict: { decision: 'approve', summary: 'ok', comments: [] }, testsPassed: true });
  }
  return { version: 1, state: TaskState.parse(s.value), context: s.context, applied: [] };
}

function deps(record: TaskRecord): BaseWatchDeps {
  return {
    tasks: { get: async () => record, list: async () => [record] },
    index: { pullRequestOf: async () => ({ number: 1, url: 'https://example.invalid/pull/1' }), taskForPullRequest: async () => TASK },
    github: createGitHubClient(GitHubConfig.parse({ token: TOKEN, apiUrl: fake.url, gitUrl: fake.gitUrl, paceWrites: false }), log),
    publish: async (event) => void published.push(event),
    log,
    now: () => new Date('2026-03-01T12:00:00.000Z'),
    sleep: async (ms) => void slept.push(ms),
  };
}

describe('base watch', () => {
  it('reads a not-yet-computed mergeability again, then reports a conflict with the base', async () => {
    const base = await fake.commitFiles('acme', 'app', { 'greet.js': "export const greet = 'hello';\n" }, { message: 'Greet on main' });
    repo.mergeabilityPendingReads = 2;

    await checkBase(deps(taskRecord(head)), TASK);

    expect(fake.requestsTo(PULL_GET)).toHaveLength(3);
    expect(slept).toEqual([1000, 2000]);
    expect(published).toEqual([
      { type: 'base.moved', taskId: TASK, msgId: `${TASK}:base:${head}:${base}:dirty`, sentAt: '2026-03-01T12:00:00.000Z', head, baseSha: base, mergeableState: 'dirty' },
    ]);
  });

  it('gives up for now, sending nothing, when GitHub never computes the mergeability', async () => {
    await fake.commitFiles('acme', 'app', { 'greet.js': "export const greet = 'hello';\n" }, { message: 'Greet on main' });
    repo.mergeabilityPendingReads = 10;

    await checkBase(deps(taskRecord(head)), TASK);

    expect(fake.requestsTo(PULL_GET)).toHaveLength(4);
    expect(published).toEqual([]);
  });

  it('reports behind only where the base requires up-to-date branches', async () => {
    const base = await fake.commitFiles('acme', 'app', { 'docs.md': 'docs\n' }, { message: 'Docs on main' });
    await checkBase(deps(taskRecord(head)), TASK);
    expect(published).toEqual([]);

    repo.requireUpToDate = true;
    await checkBase(deps(taskRecord(head)), TASK);
    expect(published).toMatchObject([{ type: 'base.moved', head, baseSha: base, mergeableState: 'behind' }]);
  });

  it('sends nothing for a head the task does not know yet, nor reads GitHub for a task at work', async () => {
    await fake.commitFiles('acme', 'app', { 'greet.js': "export const greet = 'hello';\n" }, { message: 'Greet on main' });
    await checkBase(deps(taskRecord('0123456789abcdef0123456789abcdef01234567')), TASK);
    expect(published).toEqual([]);
    expect(fake.requestsTo(PULL_GET)).toHaveLength(1);

    await checkBase(deps(taskRecord(head, 'implementing')), TASK);
    expect(fake.requestsTo(PULL_GET)).toHaveLength(1);
    expect(published).toEqual([]);
  });

  it('routes a push to a base branch, and ignores pushes to tags and to Stagegate branches', async () => {
    const d = deps(taskRecord(head));
    const push = (ref: string) => ({ ...pushed({ owner: 'acme', repo: 'app', branch: 'main', before: head, after: head, sender: 'wendy' }), ref });
    expect(routeBasePush(d, push('refs/tags/v1'))).toEqual({ ignored: 'a push to a tag' });
    expect(routeBasePush(d, push(`refs/heads/${BRANCH}`))).toMatchObject({ ignored: expect.stringContaining('Stagegate branch') });
    const routed = routeBasePush(d, push('refs/heads/main'));
    expect(routed).toMatchObject({ work: 'read the pull requests of tasks based on main' });
    expect(routeBasePush(d, push('refs/heads/develop'))).toMatchObject({ work: 'read the pull requests of tasks based on develop' });
  });
});
