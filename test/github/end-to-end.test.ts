/**
 * Issue 4 end to end: an issue labelled `stagegate` → the plan on the issue's status comment →
 * `/approve` by a writer → the coder's branch pushed through serve's git gateway and a pull
 * request opened → the reviewer's review posted on it → checks green → `/approve` at the deploy
 * gate → merged (the pull request says `Closes #N`) and the branch deleted. The status
 * comment shows each step and the issue's label follows the states.
 *
 * The orchestrator and the agents are Stagegate's real processes, answered by the scripted model
 * server; serve (webhooks, the status comment, pull requests, the git gateway) runs in-process
 * against the fake GitHub. Only serve and the deployer hold a GitHub token: the planner, coder and
 * reviewer processes are started without one, and push nothing but through the gateway.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import type { Verdict } from '../../core/bus/messages.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { loadConfig } from '../../core/config.js';
import type { AnswerFn } from '../../core/scripted-model/index.js';
import { startScriptedModelServer, type ScriptedModelServer } from '../../core/scripted-model/index.js';
import type { TaskRecord } from '../../core/task-record.js';
import { statusMarker } from '../../orchestrator/github/status-comment.js';
import { startServe, type RunningServe } from '../../orchestrator/serve/serve.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { runGit } from '../fakes/github/bare-repo.js';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github/server.js';
import { issueCommentCreated, issueLabeled, delivery, post } from '../helpers/github-webhooks.js';
import { issueTask } from '../helpers/issue-task.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { isSecurityReview, noFindings, smallRepoAnswers } from '../helpers/small-repo.js';
import { startStagegateProcesses, type StagegateProcesses } from '../helpers/stagegate-processes.js';
import { waitFor } from '../helpers/wait-for.js';

const OWNER = 'acme';
const REPO = 'site';
const BOT = 'stagegate-bot';
const WRITER = 'wendy-writer';
const TOKEN = 'ghp_e2e_stagegate_bot_token_01';
const SECRET = 'e2e-webhook-secret-9f3a';
const silent = pino({ level: 'silent' });
const CONVENTION = 'Notes go under notes/, one file per task.';
const LINT = 'test -f README.md';
/** Short, so a job whose worker was killed comes back to another within seconds. */
const ACK_WAIT_MS = 3_000;

let nats: TestNatsServer;
let nc: NatsConnection;
let model: ScriptedModelServer;
let fake: FakeGitHub;
let serve: RunningServe;
let agents: StagegateProcesses;
let deployer: StagegateProcesses;
let tasks: TaskClient;
let dir: string;

beforeAll(async () => {
  nats = await startTestNatsServer();
  nc = await connectBus(nats.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: ACK_WAIT_MS, jobMaxDeliveries: 3, updateExisting: true });
  tasks = await createTaskClient(nc);
  model = await startScriptedModelServer({ script: { answers: {} } });
  fake = await startFakeGitHub({ userTokens: { [TOKEN]: BOT } });
  await fake.addRepo({ owner: OWNER, repo: REPO, files: { 'README.md': '# site\n', 'AGENTS.md': `${CONVENTION}\n`, '.github/stagegate.yml': `commands:\n  lint: ${LINT}\n` } });
  fake.setPermission(OWNER, REPO, WRITER, 'write');
  fake.setPermission(OWNER, REPO, BOT, 'write');

  dir = await mkdtemp(join(tmpdir(), 'sg-github-e2e-'));
  const file = join(dir, 'stagegate.json');
  await writeFile(file, JSON.stringify({ github: { botLogin: BOT, ci: { noChecksAfterMs: 0 } } }));
  const github = { GITHUB_TOKEN: TOKEN, GITHUB_API_URL: fake.url, GITHUB_GIT_URL: fake.gitUrl, STAGEGATE_GITHUB_PACE_WRITES: 'false' };
  const config = loadConfig({
    file,
    env: {
      ...github,
      NATS_URL: nats.url,
      GITHUB_WEBHOOK_SECRET: SECRET,
      STAGEGATE_PLAN_APPROVERS: 'github-permission:write',
      STAGEGATE_REVIEW_APPROVERS: 'github-permission:write',
      STAGEGATE_DEPLOY_APPROVERS: 'github-permission:write',
    },
  });
  serve = await startServe({ config, nc, log: silent, port: 0 });

  // The agents that run model-written commands get no GitHub credentials at all.
  agents = await startStagegateProcesses({ natsUrl: nats.url, modelUrl: model.url, env: { STAGEGATE_JOB_ACK_WAIT_MS: String(ACK_WAIT_MS) } });
  await agents.orchestrator();
  await Promise.all((['planner', 'coder', 'reviewer'] as const).map((role) => agents.worker(role)));
  deployer = await startStagegateProcesses({
    natsUrl: nats.url,
    modelUrl: model.url,
    env: { ...github, STAGEGATE_JOB_ACK_WAIT_MS: String(ACK_WAIT_MS), STAGEGATE_DEPLOY_STRATEGY: 'merge', STAGEGATE_DEPLOY_MERGE_METHOD: 'squash', STAGEGATE_DEPLOY_POLL_MS: '200', STAGEGATE_DEPLOY_WAIT_MS: '120000' },
  });
  await deployer.worker('deployer');
}, 120_000);

afterAll(async () => {
  await deployer?.stop();
  await agents?.stop();
  await serve?.stop();
  await nc?.drain();
  await model?.close();
  await fake?.close();
  await nats?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

const send = (event: string, payload: unknown) => post(`${serve.url}/webhooks/github`, delivery(event, payload, SECRET));
const fakeRepo = () => fake.state.repo(OWNER, REPO)!;

/** The reviewer approves, with one comment on the line the coder added (so it lands on the diff); its security review finds nothing. */
const reviewer: AnswerFn = (request) => {
  if (isSecurityReview(request)) return { json: noFindings };
  const verdict: Verdict = { decision: 'approve', summary: 'The note is there.', risk: 'low', comments: [{ file: `notes/${request.taskId}.md`, line: 1, body: 'Say what is done.' }] };
  return { json: verdict };
};

const taskOf = (issueNumber: number, accept: (r: TaskRecord) => boolean, what: string, timeoutMs = 60_000) => issueTask(tasks, issueNumber, accept, what, timeoutMs);

/** Every body the status comment had, in order: created, then each edit. */
function statusBodies(taskId: string): string[] {
  const created = fake.requestsTo('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', (r) => r.status === 201 && String((r.body as { body?: string }).body).startsWith(statusMarker(taskId)));
  const id = (created[0]?.response as { id?: number } | undefined)?.id;
  const edits = fake.requestsTo('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', (r) => r.params.comment_id === String(id));
  return [...created, ...edits].map((r) => String((r.body as { body?: string }).body));
}

function inOrder(seen: readonly string[], order: readonly string[]): boolean {
  let at = 0;
  for (const s of seen) {
    const i = order.indexOf(s, at);
    if (i < 0) return false;
    at = i;
  }
  return true;
}

describe('GitHub end to end', () => {
  it('takes an issue from the label to a merged pull request, with the status comment and labels following', async () => {
    model.enqueue('planner', smallRepoAnswers.planner);
    model.enqueue('coder', smallRepoAnswers.coder);
    model.enqueue('reviewer', reviewer, reviewer);
    const issue = fake.addIssue(OWNER, REPO, { title: 'Add a note', body: 'A note saying it is done.', user: WRITER, labels: ['stagegate'] });

    // Label → plan → the plan gate, shown on the issue.
    expect((await send('issues', issueLabeled({ owner: OWNER, repo: REPO, number: issue.number, label: 'stagegate', sender: WRITER, title: 'Add a note' }))).status).toBe(200);
    const planned = await taskOf(issue.number, (r) => r.state === 'awaitingPlanApproval', 'at the plan gate');
    const taskId = planned.context.taskId;
    await waitFor('the plan on the status comment', async () => statusBodies(taskId).find((b) => b.includes('Waiting for approval of the plan') && b.includes('add a note')));

    // /approve by a writer → coder pushes through the gateway → pull request → review → the deploy gate.
    await send('issue_comment', issueCommentCreated({ owner: OWNER, repo: REPO, number: issue.number, body: '/approve looks right', user: WRITER }));
    const reviewed = await taskOf(issue.number, (r) => r.state === 'awaitingDeployApproval', 'at the deploy gate', 90_000);
    const branch = reviewed.context.branch;
    const commit = reviewed.context.implementation?.commit ?? '';
    const pr = await waitFor('the pull request with its review', async () => {
      const found = [...fakeRepo().issues.values()].find((i) => i.pull?.head === branch);
      return found !== undefined && fakeRepo().reviews.some((r) => r.pullNumber === found.number) ? found : undefined;
    });
    expect(branch).toBe(`stagegate/${issue.number}-add-a-note`);
    expect(pr.body).toContain(`Closes #${issue.number}`);
    expect(pr.pull?.lastHeadSha).toBe(commit);
    const review = fakeRepo().reviews.find((r) => r.pullNumber === pr.number);
    expect(review).toMatchObject({ user: BOT, state: 'COMMENTED' });
    expect(review?.body).toContain('**Security review:** no findings — nothing found');
    expect(fakeRepo().reviewComments.filter((c) => c.reviewId === review?.id)).toEqual([expect.objectContaining({ path: `notes/${taskId}.md`, line: 1, body: 'Say what is done.' })]);

    // Checks go green; /approve at the deploy gate → the deployer merges and deletes the branch.
    await fake.setCheck(OWNER, REPO, commit, 'ci', { status: 'in_progress' });
    await send('issue_comment', issueCommentCreated({ owner: OWNER, repo: REPO, number: issue.number, body: '/approve ship it', user: WRITER }));
    await taskOf(issue.number, (r) => r.state === 'deploying', 'deploying');
    await fake.setCheck(OWNER, REPO, commit, 'ci', { conclusion: 'success' });
    const done = await taskOf(issue.number, (r) => r.state === 'done', 'done', 60_000);

    const merged = fakeRepo().issues.get(pr.number);
    expect(merged?.pull).toMatchObject({ merged: true, mergedBy: BOT });
    expect(done.context.deployed?.commit).toBe(merged?.pull?.mergeCommitSha);
    expect(fake.requestsTo('PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge')).toHaveLength(1);
    expect(fake.requestsTo('PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge')[0]?.body).toMatchObject({ merge_method: 'squash', sha: commit });
    expect(fake.requestsTo('POST /repos/{owner}/{repo}/pulls')).toHaveLength(1);
    expect((await runGit(fakeRepo().dir, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`])).code).not.toBe(0);

    // Every push came through the gateway, as the bot, to the task's branch, and none was forced.
    const updates = fake.pushes.flatMap((p) => p.updates.map((u) => ({ ...u, user: p.user })));
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.every((u) => u.ref === `refs/heads/${branch}` && u.user === BOT && !u.forced && u.applied)).toBe(true);
    expect(fake.gitRequests.every((r) => r.user === BOT)).toBe(true);

    // The status comment showed each step; the label followed the states.
    const final = await waitFor('the status comment to show done', async () => statusBodies(taskId).find((b) => b.includes('✅ Done')));
    expect(final).toContain(`**Pull request:** #${pr.number}`);
    expect(final).toContain(`**Deploy:** \`${merged?.pull?.mergeCommitSha}\``);
    const shown = statusBodies(taskId).map((b) => /\*\*([^*]+)\*\* · task/.exec(b)?.[1] ?? '?');
    const order = ['📝 Planning', '⏸️ Waiting for approval of the plan', '🛠️ Implementing', '🔍 Reviewing', '⏳ Waiting for checks', '⏸️ Waiting for approval to deploy', '🚀 Deploying', '✅ Done'];
    expect(inOrder([...new Set(shown)], order), shown.join(' → ')).toBe(true);
    expect(shown).toEqual(expect.arrayContaining(['⏸️ Waiting for approval of the plan', '⏸️ Waiting for approval to deploy', '✅ Done']));
    await waitFor('only the done label left', async () => (fakeRepo().issues.get(issue.number)?.labels.filter((l) => l.startsWith('stagegate:')).join() === 'stagegate:done' ? true : undefined));
    const added = fake.requestsTo('POST /repos/{owner}/{repo}/issues/{issue_number}/labels', (r) => r.params.issue_number === String(issue.number)).flatMap((r) => (r.body as { labels: string[] }).labels);
    expect(inOrder(added, ['stagegate:planning', 'stagegate:awaiting-approval', 'stagegate:implementing', 'stagegate:reviewing', 'stagegate:checks', 'stagegate:awaiting-approval', 'stagegate:deploying', 'stagegate:done']), added.join(' → ')).toBe(true);
    expect(added).toEqual(expect.arrayContaining(['stagegate:awaiting-approval', 'stagegate:deploying', 'stagegate:done']));
    expect(fakeRepo().issues.get(issue.number)?.labels).toContain('stagegate');

    // Each agent was told the repository's instructions, cloned through the gateway; the coder ran the settings' lint command.
    for (const role of ['planner', 'coder', 'reviewer']) {
      const input = model.requests.find((r) => r.role === role && r.taskId === taskId)?.body.input;
      const first: unknown = Array.isArray(input) ? input[0] : undefined;
      const text = typeof first === 'object' && first !== null && 'content' in first ? String(first.content) : '';
      expect(text.startsWith('# Repository instructions\n'), role).toBe(true);
      expect(text, role).toContain(CONVENTION);
    }
    expect(await progressOf(taskId, 'coder')).toContain(`lint: ${LINT} → exit 0`);

    // No process that runs model-written commands was handed a GitHub token.
    for (const child of agents.group.children) {
      const environ = await readFile(`/proc/${child.process.pid}/environ`, 'utf8');
      expect(environ, child.name).not.toContain(TOKEN);
      expect(environ, child.name).not.toContain('GITHUB_TOKEN');
    }
    expect(model.remaining()).toBe(0);
  }, 180_000);

  it('survives the deployer and the orchestrator dying while it waits for the checks: one merge', async () => {
    model.enqueue('planner', smallRepoAnswers.planner);
    model.enqueue('coder', smallRepoAnswers.coder);
    model.enqueue('reviewer', reviewer, reviewer);
    const issue = fake.addIssue(OWNER, REPO, { title: 'Add another note', user: WRITER, labels: ['stagegate'] });
    await send('issues', issueLabeled({ owner: OWNER, repo: REPO, number: issue.number, label: 'stagegate', sender: WRITER, title: 'Add another note' }));
    await taskOf(issue.number, (r) => r.state === 'awaitingPlanApproval', 'at the plan gate');
    await send('issue_comment', issueCommentCreated({ owner: OWNER, repo: REPO, number: issue.number, body: '/approve', user: WRITER }));
    const reviewed = await taskOf(issue.number, (r) => r.state === 'awaitingDeployApproval', 'at the deploy gate', 90_000);
    const taskId = reviewed.context.taskId;
    const commit = reviewed.context.implementation?.commit ?? '';
    await fake.setCheck(OWNER, REPO, commit, 'ci', { status: 'in_progress' });
    await send('issue_comment', issueCommentCreated({ owner: OWNER, repo: REPO, number: issue.number, body: '/approve', user: WRITER }));
    await waitFor('the deployer waiting for the checks', async () => ((await progressOf(taskId, 'deployer')).some((m) => m.startsWith('waiting for checks: ci (in_progress)')) ? true : undefined), 60_000);

    await deployer.kill(deployer.group.children.find((c) => c.name === 'deployer')!);
    await agents.kill(agents.group.children.find((c) => c.name === 'orchestrator')!);
    await agents.orchestrator();
    await deployer.worker('deployer');
    await fake.setCheck(OWNER, REPO, commit, 'ci', { conclusion: 'success' });
    const done = await taskOf(issue.number, (r) => r.state === 'done', 'done', 60_000);

    const pr = [...fakeRepo().issues.values()].find((i) => i.pull?.head === reviewed.context.branch);
    expect(pr?.pull?.merged).toBe(true);
    expect(fake.requestsTo('PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge', (r) => r.params.pull_number === String(pr?.number))).toHaveLength(1);
    expect(done.context.stages.filter((s) => s.stage === 'deploy')).toHaveLength(1);
    expect((await progressOf(taskId, 'deployer')).filter((m) => m === 'deploying with the merge strategy')).toHaveLength(2);
    expect(fake.pushes.flatMap((p) => p.updates).some((u) => u.forced)).toBe(false);
  }, 180_000);
});

async function progressOf(taskId: string, role: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const entry of tasks.logs(taskId)) if (entry.type === 'agent.progress' && entry.role === role) lines.push(entry.message);
  return lines;
}

