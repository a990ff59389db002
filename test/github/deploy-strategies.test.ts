/**
 * The deployer's GitHub strategies against the fake GitHub: `merge` (checks, then merge the
 * reviewed commit, then delete the branch), `workflow` (dispatch, wait for the run) and
 * `deployment` (create, wait for its status). Each: success, failure with the link, timeout,
 * and a redelivered job (the first delivery "died" mid-wait) that resumes without starting a
 * second merge, run or deployment.
 */
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JobContext, JobOutcome } from '../../core/bus/job-worker.js';
import type { DeployRequest } from '../../core/bus/messages.js';
import { GitHubDeployConfig, loadConfig, type GitHubConfig } from '../../core/config.js';
import { isStagegateError } from '../../core/errors.js';
import { createGitHubClient, type GitHubClient } from '../../core/github/client.js';
import { createDeployerHandler } from '../../agents/deployer/worker.js';
import type { Clock } from '../../agents/deployer/strategies/github-deploy.js';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github/server.js';
import { cloneFromFake, type WorkingCopy } from '../helpers/github-git.js';

const OWNER = 'acme';
const REPO = 'shop';
const TOKEN = 'ghp_deployer_test_token_0001';
const BOT = 'stagegate-bot';
const BRANCH = 'stagegate/7-add-greeting';
const silent = pino({ level: 'silent' });

let fake: FakeGitHub;
let client: GitHubClient;
let config: GitHubConfig;
let wc: WorkingCopy;
let commit: string;
let taskN = 0;

beforeAll(async () => {
  fake = await startFakeGitHub({ userTokens: { [TOKEN]: BOT } });
  config = loadConfig({ env: { GITHUB_TOKEN: TOKEN, GITHUB_API_URL: fake.url, GITHUB_GIT_URL: fake.gitUrl, STAGEGATE_GITHUB_PACE_WRITES: 'false' } }).github;
  client = createGitHubClient(config, silent, { retries: 0 });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(async () => {
  taskN++;
  await fake.addRepo({ owner: OWNER, repo: `${REPO}${taskN}` });
  wc = await cloneFromFake(fake, { owner: OWNER, repo: `${REPO}${taskN}`, token: TOKEN });
  commit = await wc.commit({ 'greet.js': 'export const greet = () => "hi";\n' }, 'Add greet()');
  await wc.push(BRANCH);
});

afterEach(async () => {
  await wc.cleanup();
});

const repo = () => `${REPO}${taskN}`;

function deployJob(over: { sentAt?: string; attempt?: number } = {}): DeployRequest {
  const taskId = `t-deploy${taskN}`;
  const attempt = over.attempt ?? 1;
  return {
    type: 'deploy.request',
    taskId,
    msgId: `${taskId}:deploy:${attempt}`,
    sentAt: over.sentAt ?? new Date().toISOString(),
    attempt,
    task: {
      repo: `http://127.0.0.1:1/git/${taskId}/${OWNER}/${repo()}.git`,
      title: 'Add a greeting',
      body: '',
      base: 'main',
      submittedBy: 'github:wendy',
      branch: BRANCH,
      source: { kind: 'github', owner: OWNER, repo: repo(), issueNumber: 7 },
    },
    branch: BRANCH,
    commit,
  };
}

/** Progress lines as they come, and a way to await one. */
function jobContext() {
  const lines: string[] = [];
  const events = new EventEmitter();
  const ctx: JobContext = {
    log: silent,
    progress: async (message) => {
      lines.push(message);
      events.emit('line', message);
    },
  };
  const saw = (pattern: RegExp, timeoutMs = 10_000) =>
    new Promise<string>((resolve, reject) => {
      const found = lines.find((l) => pattern.test(l));
      if (found !== undefined) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`timed out waiting for progress ${pattern}; saw: ${lines.join(' | ')}`)), timeoutMs);
      events.on('line', (l: string) => {
        if (!pattern.test(l)) return;
        clearTimeout(timer);
        resolve(l);
      });
    });
  return { ctx, lines, saw };
}

/** A deployer that dies while it waits: its first sleep never ends (its job would be redelivered). */
function dyingClock(): Clock & { dead: Promise<void> } {
  let died: () => void = () => undefined;
  const dead = new Promise<void>((resolve) => (died = resolve));
  return { now: () => Date.now(), sleep: () => (died(), new Promise<void>(() => undefined)), dead };
}

function deployer(deploy: Partial<GitHubDeployConfig>, clock?: Clock) {
  const settings = GitHubDeployConfig.parse({ pollMs: 20, ...deploy });
  return createDeployerHandler({ workDir: '/nonexistent', commandTimeoutMs: 1000, github: { config: { ...config, deploy: settings }, client }, ...(clock === undefined ? {} : { clock }) });
}

async function failureOf(run: Promise<JobOutcome>): Promise<string> {
  try {
    await run;
  } catch (err) {
    if (isStagegateError(err, 'DEPLOY_FAILED')) return err.message;
    throw err;
  }
  throw new Error('expected the deploy to fail');
}

async function openPullRequest(): Promise<{ number: number; html_url: string }> {
  const octokit = await client.forRepository({ owner: OWNER, repo: repo() });
  const { data } = await octokit.rest.pulls.create({ owner: OWNER, repo: repo(), head: BRANCH, base: 'main', title: 'Add a greeting', body: 'Closes #7' });
  return data;
}

const merges = () => fake.requestsTo('PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge', (r) => r.params.repo === repo());
const branchExists = async () => (await wc.git(['ls-remote', '--heads', 'origin', BRANCH])).trim() !== '';

describe('merge strategy', () => {
  it('waits for the checks on the reviewed commit, merges it with the configured method and deletes the branch', async () => {
    const pr = await openPullRequest();
    await fake.setCheck(OWNER, repo(), commit, 'ci', { status: 'in_progress' });
    const { ctx, saw } = jobContext();

    const running = deployer({ strategy: 'merge', mergeMethod: 'squash' })(deployJob(), ctx);
    await saw(/waiting for checks: ci \(in_progress\)/);
    await fake.setCheck(OWNER, repo(), commit, 'ci', { conclusion: 'success' });
    const outcome = await running;

    expect(merges()).toHaveLength(1);
    expect(merges()[0]?.body).toMatchObject({ merge_method: 'squash', sha: commit });
    const merged = fake.state.pull(fake.state.repo(OWNER, repo())!, pr.number);
    expect(merged?.pull.merged).toBe(true);
    expect(outcome).toMatchObject({ type: 'deploy.succeeded', commit: merged?.pull.mergeCommitSha });
    expect(outcome.type === 'deploy.succeeded' && outcome.target).toContain(pr.html_url);
    expect(await branchExists()).toBe(false);
  });

  it('waits for the pull request when the deploy overtakes its opening', async () => {
    const { ctx, saw } = jobContext();

    const running = deployer({ strategy: 'merge' })(deployJob(), ctx);
    await saw(/waiting for the pull request from stagegate\/7-add-greeting to be opened/);
    await openPullRequest();

    await expect(running).resolves.toMatchObject({ type: 'deploy.succeeded' });
    expect(merges()).toHaveLength(1);
  });

  it('fails with the link of a red check and merges nothing', async () => {
    await openPullRequest();
    const check = await fake.setCheck(OWNER, repo(), commit, 'ci', { conclusion: 'failure' });
    const { ctx } = jobContext();

    const reason = await failureOf(deployer({ strategy: 'merge' })(deployJob(), ctx));

    expect(reason).toMatch(/^checks failed on pull request #\d+: ci failure \(http:\/\/.+\/runs\/\d+\)$/);
    expect(reason).toContain(`/runs/${check.id}`);
    expect(merges()).toHaveLength(0);
    expect(await branchExists()).toBe(true);
  });

  it('fails on a failed commit status too, with its target link', async () => {
    await openPullRequest();
    await fake.setStatus(OWNER, repo(), commit, 'ci/legacy', 'error');
    const { ctx } = jobContext();

    const reason = await failureOf(deployer({ strategy: 'merge' })(deployJob(), ctx));

    expect(reason).toContain('ci/legacy error');
    expect(merges()).toHaveLength(0);
  });

  it('times out, counted from when the job was sent, naming the checks it still waits for', async () => {
    await openPullRequest();
    await fake.setCheck(OWNER, repo(), commit, 'ci', { status: 'queued' });
    const { ctx } = jobContext();
    const sentAt = new Date(Date.now() - 60_000).toISOString();

    const reason = await failureOf(deployer({ strategy: 'merge', timeoutMs: 60_000 })(deployJob({ sentAt }), ctx));

    expect(reason).toMatch(/^timed out after 1 min waiting for the checks on .+ of pull request #\d+ \(http.+\): still waiting for checks: ci \(queued\)$/);
    expect(merges()).toHaveLength(0);
  });

  it('waits for a required check that has not reported yet', async () => {
    await openPullRequest();
    const { ctx, saw } = jobContext();

    const running = deployer({ strategy: 'merge', requiredChecks: ['build'] })(deployJob(), ctx);
    await saw(/waiting for checks: build \(not reported yet\)/);
    await fake.setCheck(OWNER, repo(), commit, 'build', { conclusion: 'success' });

    await expect(running).resolves.toMatchObject({ type: 'deploy.succeeded' });
  });

  it('refuses to merge when the branch moved since the approved commit', async () => {
    await openPullRequest();
    await wc.commit({ 'late.js': 'unreviewed\n' }, 'Late change');
    await wc.push(BRANCH);
    const { ctx } = jobContext();

    const reason = await failureOf(deployer({ strategy: 'merge' })(deployJob(), ctx));

    expect(reason).toMatch(/moved since the deploy gate was passed \(head [0-9a-f]{10}, approved [0-9a-f]{10}\): not merging a commit nobody approved/);
    expect(merges()).toHaveLength(0);
  });

  it('reports a merge GitHub refuses with 409 because the branch moved while the checks ran, and does not try again', async () => {
    await openPullRequest();
    await fake.setCheck(OWNER, repo(), commit, 'ci', { status: 'in_progress' });
    const { ctx, saw } = jobContext();
    const running = failureOf(deployer({ strategy: 'merge' })(deployJob(), ctx));
    await saw(/waiting for checks/);
    await wc.commit({ 'late.js': 'pushed after the approval\n' }, 'Late change');
    await wc.push(BRANCH);
    await fake.setCheck(OWNER, repo(), commit, 'ci', { conclusion: 'success' });

    const reason = await running;

    expect(reason).toMatch(new RegExp(`^GitHub would not merge pull request #\\d+ \\(the branch moved since ${commit.slice(0, 10)} was approved\\): http`));
    expect(merges().map((r) => ({ status: r.status, sha: (r.body as { sha?: string }).sha }))).toEqual([{ status: 409, sha: commit }]);
    expect((await wc.git(['ls-remote', 'origin', 'refs/heads/main'])).split('\t')[0]).not.toBe(commit);
    expect(await branchExists()).toBe(true);
  });

  it('resumes a redelivered job: the second delivery merges once, and a third finds it merged', async () => {
    await openPullRequest();
    await fake.setCheck(OWNER, repo(), commit, 'ci', { status: 'in_progress' });
    const job = deployJob();
    const first = dyingClock();
    void deployer({ strategy: 'merge' }, first)(job, jobContext().ctx);
    await first.dead;

    const again = jobContext();
    const second = deployer({ strategy: 'merge' })(job, again.ctx);
    await again.saw(/waiting for checks/);
    await fake.setCheck(OWNER, repo(), commit, 'ci', { conclusion: 'success' });
    const outcome = await second;
    const third = await deployer({ strategy: 'merge' })(job, jobContext().ctx);

    expect(merges()).toHaveLength(1);
    expect(third).toEqual(outcome);
  });
});

describe('workflow strategy', () => {
  beforeEach(() => {
    fake.addWorkflow(OWNER, repo(), { path: 'deploy.yml', name: 'Deploy' });
  });

  const dispatches = () => fake.requestsTo('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', (r) => r.params.repo === repo());
  const runOf = () => fake.state.repo(OWNER, repo())!.runs[0]!;

  it('dispatches the workflow on the branch with the inputs filled in and succeeds when the run does', async () => {
    const { ctx, saw } = jobContext();

    const running = deployer({ strategy: 'workflow', workflow: 'deploy.yml', inputs: { task: '{taskId}', sha: '{commit}' } })(deployJob(), ctx);
    await saw(/waiting for run \d+ \(queued\)/);
    fake.completeRun(OWNER, repo(), runOf().id, 'success');
    const outcome = await running;

    expect(dispatches()).toHaveLength(1);
    expect(dispatches()[0]?.body).toMatchObject({ ref: BRANCH, inputs: { task: `t-deploy${taskN}`, sha: commit } });
    expect(outcome).toMatchObject({ type: 'deploy.succeeded', commit });
    expect(outcome.type === 'deploy.succeeded' && outcome.target).toContain(`/actions/runs/${runOf().id}`);
  });

  it('fails with the run link when the run fails', async () => {
    const { ctx, saw } = jobContext();

    const running = deployer({ strategy: 'workflow', workflow: 'deploy.yml' })(deployJob(), ctx);
    await saw(/waiting for run/);
    fake.completeRun(OWNER, repo(), runOf().id, 'failure');
    const reason = await failureOf(running);

    expect(reason).toBe(`the deploy.yml run concluded failure: ${fake.gitUrl}/${OWNER}/${repo()}/actions/runs/${runOf().id}`);
  });

  it('times out with the run link', async () => {
    const { ctx } = jobContext();
    const sentAt = new Date(Date.now() - 5_000).toISOString();

    const reason = await failureOf(deployer({ strategy: 'workflow', workflow: 'deploy.yml', timeoutMs: 5_000 })(deployJob({ sentAt }), ctx));

    expect(reason).toMatch(/^timed out after 5 s waiting for the deploy.yml run on .+: still waiting for run \d+ \(queued\): http.+\/actions\/runs\/\d+$/);
  });

  it('resumes a redelivered job: finds the run the first delivery dispatched and dispatches nothing', async () => {
    const job = deployJob();
    const first = dyingClock();
    void deployer({ strategy: 'workflow', workflow: 'deploy.yml' }, first)(job, jobContext().ctx);
    await first.dead;

    const again = jobContext();
    const second = deployer({ strategy: 'workflow', workflow: 'deploy.yml' })(job, again.ctx);
    await again.saw(/found run \d+ of deploy.yml dispatched for this job/);
    fake.completeRun(OWNER, repo(), runOf().id, 'success');

    await expect(second).resolves.toMatchObject({ type: 'deploy.succeeded' });
    expect(dispatches()).toHaveLength(1);
  });

  it('dispatches again for a retry after a failed run', async () => {
    const { ctx, saw } = jobContext();
    const first = deployer({ strategy: 'workflow', workflow: 'deploy.yml' })(deployJob(), ctx);
    await saw(/waiting for run/);
    fake.completeRun(OWNER, repo(), runOf().id, 'failure');
    await failureOf(first);
    const retry = jobContext();
    const sentAt = new Date(Date.now() + 1500).toISOString();

    const second = deployer({ strategy: 'workflow', workflow: 'deploy.yml' })(deployJob({ attempt: 2, sentAt }), retry.ctx);
    await retry.saw(/dispatched deploy.yml/);
    const runs = fake.state.repo(OWNER, repo())!.runs;
    fake.completeRun(OWNER, repo(), runs.at(-1)!.id, 'success');

    await expect(second).resolves.toMatchObject({ type: 'deploy.succeeded' });
    expect(dispatches()).toHaveLength(2);
  });
});

describe('deployment strategy', () => {
  const deployments = () => fake.state.repo(OWNER, repo())!.deployments;

  it('creates a deployment of the branch for the environment and succeeds on its success status', async () => {
    const { ctx, saw } = jobContext();

    const running = deployer({ strategy: 'deployment', environment: 'staging' })(deployJob(), ctx);
    await saw(/waiting for deployment \d+ to staging \(no status yet\)/);
    const [created] = deployments();
    fake.postDeploymentStatus(OWNER, repo(), created!.id, { state: 'in_progress' });
    fake.postDeploymentStatus(OWNER, repo(), created!.id, { state: 'success', environment_url: 'https://staging.example.com' });
    const outcome = await running;

    expect(deployments()).toHaveLength(1);
    expect(created).toMatchObject({ ref: BRANCH, sha: commit, environment: 'staging', payload: { stagegateTaskId: `t-deploy${taskN}`, stagegateJobId: `t-deploy${taskN}:deploy:1` } });
    expect(outcome).toMatchObject({ type: 'deploy.succeeded', commit, target: `staging (https://staging.example.com), deployment ${created!.id}` });
  });

  it('fails with the log link when the deployment fails', async () => {
    const { ctx, saw } = jobContext();

    const running = deployer({ strategy: 'deployment' })(deployJob(), ctx);
    await saw(/waiting for deployment/);
    fake.postDeploymentStatus(OWNER, repo(), deployments()[0]!.id, { state: 'failure', log_url: 'https://ci.example.com/deploys/41', description: 'smoke test failed' });

    expect(await failureOf(running)).toBe(`deployment ${deployments()[0]!.id} to production ended in failure (smoke test failed): https://ci.example.com/deploys/41`);
  });

  it('times out while the deployment has no final status', async () => {
    const { ctx } = jobContext();
    const sentAt = new Date(Date.now() - 5_000).toISOString();

    const reason = await failureOf(deployer({ strategy: 'deployment', timeoutMs: 5_000 })(deployJob({ sentAt }), ctx));

    expect(reason).toMatch(/^timed out after 5 s waiting for deployment \d+ to production: still waiting for deployment \d+ to production \(no status yet\)$/);
  });

  it('resumes a redelivered job: finds its deployment by the job id in the payload and creates no other', async () => {
    const job = deployJob();
    const first = dyingClock();
    void deployer({ strategy: 'deployment' }, first)(job, jobContext().ctx);
    await first.dead;

    const again = jobContext();
    const second = deployer({ strategy: 'deployment' })(job, again.ctx);
    await again.saw(/found deployment \d+ created for this job/);
    fake.postDeploymentStatus(OWNER, repo(), deployments()[0]!.id, { state: 'success' });

    await expect(second).resolves.toMatchObject({ type: 'deploy.succeeded' });
    expect(deployments()).toHaveLength(1);
  });
});

describe('deployer without GitHub credentials', () => {
  it('fails a GitHub task saying what to configure', async () => {
    const handler = createDeployerHandler({ workDir: '/nonexistent', commandTimeoutMs: 1000 });

    await expect(handler(deployJob(), jobContext().ctx)).rejects.toThrow(/this deployer has no GitHub credentials: set GITHUB_TOKEN/);
  });
});
