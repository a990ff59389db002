/**
 * `POST /webhooks/github` and the label trigger, over a real nats-server, an orchestrator with
 * canned agents and the fake GitHub, with GitHub's own example payloads signed with the secret.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../core/config.js';
import { startServe } from '../../orchestrator/serve/serve.js';
import { waitFor } from '../helpers/wait-for.js';
import { exampleOf, issueLabeled, sign } from '../helpers/github-webhooks.js';
import { BODY_LIMIT, OWNER, REPO, SECRET, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';

let h: GitHubServeHarness;

beforeAll(async () => {
  h = await startGitHubServe();
});

afterEach(() => {
  h.github.assertNoUnexpected();
});

afterAll(async () => {
  await h?.stop();
});

const repo = { owner: OWNER, repo: REPO };

function newIssue(title = 'Add a health endpoint', body = 'GET /health returns 200') {
  return h.github.addIssue(OWNER, REPO, { title, body, user: WRITER });
}

/** Requests since `from` about this issue of acme/app (the status follower keeps working on earlier tasks meanwhile). */
const requestsAbout = (issueNumber: number, from: number) =>
  h.github.requests.slice(from).filter((r) => r.path.startsWith(`/repos/${OWNER}/${REPO}/issues/${issueNumber}/`)).map((r) => `${r.method} ${r.path}`);

const labeled = (number: number, extra: Partial<Parameters<typeof issueLabeled>[0]> = {}) =>
  issueLabeled({ ...repo, number, label: 'stagegate', sender: WRITER, title: 'Add a health endpoint', body: 'GET /health returns 200', ...extra });

describe('GitHub webhooks', () => {
  it('submits a task for an issue labelled stagegate, with the spec taken from the issue', async () => {
    const issue = newIssue();
    const res = await h.send('issues', labeled(issue.number, { installationId: 321 }));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'handled', work: "submit a task for the issue if the label is the repository's trigger label" });
    const record = await h.taskAt(issue.number, () => true, 'to exist');
    expect(record.context.spec).toEqual({
      repo: `${h.serve.url}/git/${record.context.taskId}/${OWNER}/${REPO}.git`,
      title: 'Add a health endpoint',
      body: 'GET /health returns 200',
      base: 'main',
      submittedBy: `github:${WRITER}`,
      branch: `stagegate/${issue.number}-add-a-health-endpoint`,
      source: { kind: 'github', owner: OWNER, repo: REPO, issueNumber: issue.number, installationId: 321 },
    });
    expect(record.context.branch).toBe(`stagegate/${issue.number}-add-a-health-endpoint`);
    expect(record.context.policies.plan.approvers).toEqual(['github-permission:write']);
  });

  it('starts no second task when an issue whose task is still running is labelled again', async () => {
    const issue = newIssue();
    await h.send('issues', labeled(issue.number));
    const first = await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
    const again = await h.send('issues', labeled(issue.number));
    expect(again.status).toBe(200);
    const tasks = await h.tasksFor(issue.number);
    expect(tasks.map((t) => t.context.taskId)).toEqual([first.context.taskId]);
  });

  it('starts a new task when the issue is labelled again after its task was cancelled', async () => {
    const issue = newIssue();
    await h.send('issues', labeled(issue.number));
    const first = await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
    await h.client.cancel(first.context.taskId, 'alice', 'wrong approach');
    await h.taskAt(issue.number, (s) => s === 'cancelled', 'cancelled');
    await h.send('issues', labeled(issue.number));
    const tasks = await waitFor('the second task at the plan gate', async () => {
      const all = await h.tasksFor(issue.number);
      return all.length === 2 && all[1]?.state === 'awaitingPlanApproval' ? all : undefined;
    });
    expect(tasks.map((t) => t.state)).toEqual(['cancelled', 'awaitingPlanApproval']);
  });

  it('ignores other labels once it has read which label the repository starts tasks with', async () => {
    const issue = newIssue();
    const from = h.github.requests.length;
    const res = await h.send('issues', labeled(issue.number, { label: 'bug' }));
    expect(res.status).toBe(200);
    expect(await h.tasksFor(issue.number)).toEqual([]);
    const reads = h.github.requests.slice(from).filter((r) => r.route === 'GET /repos/{owner}/{repo}/contents/{path}');
    expect(reads.map((r) => `${r.params.owner}/${r.params.repo}:${r.params.path} ${r.status}`)).toEqual([`${OWNER}/.github:.github/stagegate.yml 404`, `${OWNER}/${REPO}:.github/stagegate.yml 404`]);
    expect(h.github.requestsTo('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', (r) => r.params.issue_number === String(issue.number))).toEqual([]);
  });

  it('ignores the label on a pull request, whether it comes as issues.labeled or pull_request.labeled', async () => {
    const issue = newIssue();
    const asIssue = await h.send('issues', labeled(issue.number, { pullRequest: true }));
    expect(asIssue.status).toBe(202);
    expect(asIssue.json).toMatchObject({ status: 'ignored', reason: 'a label on a pull request starts nothing' });
    const pr = exampleOf('pull_request', 'labeled');
    pr.label = { ...(pr.label as object), name: 'stagegate' };
    const asPull = await h.send('pull_request', pr);
    expect(asPull.status).toBe(202);
    expect(asPull.json).toMatchObject({ status: 'ignored' });
    expect(await h.tasksFor(issue.number)).toEqual([]);
  });

  it('refuses a delivery with a bad signature with 401 and changes nothing; the same delivery signed right then counts', async () => {
    const issue = newIssue();
    const before = h.github.requests.length;
    const payload = labeled(issue.number);
    const bad = await h.send('issues', payload, { id: 'bad-signature-delivery-1', signature: sign(JSON.stringify(payload), 'not-the-secret') });
    expect(bad.status).toBe(401);
    expect(bad.json).toEqual({ error: { code: 'UNAUTHORIZED', message: 'X-Hub-Signature-256 does not match the body and the webhook secret' } });
    expect(await h.tasksFor(issue.number)).toEqual([]);
    expect(requestsAbout(issue.number, before)).toEqual([]);
    const good = await h.send('issues', payload, { id: 'bad-signature-delivery-1' });
    expect(good.status).toBe(200);
  });

  it('refuses a delivery with no signature with 401', async () => {
    const issue = newIssue();
    const res = await h.send('issues', labeled(issue.number), { signature: null });
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect(await h.tasksFor(issue.number)).toEqual([]);
  });

  it('refuses a body signed with the secret but changed on the way', async () => {
    const issue = newIssue();
    const payload = labeled(issue.number);
    const signature = sign(JSON.stringify(payload), SECRET);
    const res = await h.send('issues', { ...payload, label: { name: 'stagegate', tampered: true } }, { signature });
    expect(res.status).toBe(401);
  });

  it('acknowledges a replayed delivery with 200 and ignores it', async () => {
    const first = newIssue();
    const res = await h.send('issues', labeled(first.number), { id: 'replayed-delivery-1' });
    expect(res.status).toBe(200);
    const record = await h.taskAt(first.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
    await h.client.cancel(record.context.taskId, 'alice', 'to see whether a replay starts another');
    await h.taskAt(first.number, (s) => s === 'cancelled', 'cancelled');
    const replay = await h.send('issues', labeled(first.number), { id: 'replayed-delivery-1' });
    expect(replay.status).toBe(200);
    expect(replay.json).toMatchObject({ status: 'duplicate', delivery: 'replayed-delivery-1' });
    expect(await h.tasksFor(first.number)).toHaveLength(1);
  });

  it.each([
    ['pull_request_review', 'submitted'],
    ['star', 'created'],
    ['ping', undefined],
  ])('answers %s.%s with 202 and ignores it', async (event, action) => {
    const before = h.github.requests.length;
    const res = await h.send(event, exampleOf(event, action));
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ status: 'ignored' });
    expect(h.github.requests.slice(before).filter((r) => /codertocat|hello-world/i.test(r.path))).toEqual([]);
  });

  it('answers a body over the size limit with 413, as JSON', async () => {
    const issue = newIssue();
    const res = await h.send('issues', labeled(issue.number, { body: 'x'.repeat(BODY_LIMIT + 1) }));
    expect(res.status).toBe(413);
    expect(res.json).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: `request body is larger than ${BODY_LIMIT} bytes` } });
    expect(await h.tasksFor(issue.number)).toEqual([]);
  });

  it('answers a signed delivery that is not JSON with 400', async () => {
    const body = 'not json';
    const res = await fetch(`${h.serve.url}/webhooks/github`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': 'not-json-1', 'x-hub-signature-256': sign(body, SECRET) },
      body,
    });
    expect(res.status).toBe(400);
  });

  it('says at /readyz that the GitHub channel is on', async () => {
    const res = await fetch(`${h.serve.url}/readyz`);
    const body = (await res.json()) as { channels: string[] };
    expect(body.channels).toContain("github (webhooks at POST /webhooks/github, token, label 'stagegate', commands from write permission)");
  });
});

describe('stagegate serve with GitHub configured', () => {
  it('refuses to start without a webhook secret, naming GITHUB_WEBHOOK_SECRET', async () => {
    const config = loadConfig({ env: { NATS_URL: h.server.url, GITHUB_TOKEN: 'ghp_x', GITHUB_API_URL: h.github.url } });
    await expect(startServe({ config, nc: h.nc, log: pino({ level: 'silent' }), port: 0 })).rejects.toThrow(/GITHUB_WEBHOOK_SECRET is not set/);
  });
});
