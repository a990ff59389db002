/**
 * The fake GitHub driven by the real client (token mode and App mode) and by real `git` over
 * HTTP: what later GitHub tests rely on, checked once here.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GitHubConfig } from '../../core/config.js';
import { isStagegateError } from '../../core/errors.js';
import { INSTALLATION_PERMISSIONS, readPrivateKey } from '../../core/github/auth.js';
import { createGitHubClient, gitHubStatusOf, listAll, type GitHubClient } from '../../core/github/client.js';
import { readRepoFile } from '../../core/github/read-file.js';
import { createLogger } from '../../core/log.js';
import { startFakeGitHub, type FakeGitHub } from './github/server.js';

const OWNER = 'acme';
const TOKEN = 'ghp_stagegate_test_token';
const ALICE_TOKEN = 'ghp_alice_test_token';
const APP_ID = 4242;

const keys = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
});

let fake: FakeGitHub;
let work: string;
let keyFile: string;
const logLines: Array<Record<string, unknown>> = [];
const log = createLogger({
  level: 'debug',
  destination: new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  }),
});

let repoCount = 0;
async function newRepo(files?: Record<string, string>): Promise<string> {
  const name = `app-${++repoCount}`;
  await fake.addRepo({ owner: OWNER, repo: name, ...(files === undefined ? {} : { files }) });
  return name;
}

function tokenClient(): GitHubClient {
  return createGitHubClient(GitHubConfig.parse({ token: TOKEN, apiUrl: fake.url, paceWrites: false }), log);
}

function appClient(privateKey = keyFile): GitHubClient {
  return createGitHubClient(GitHubConfig.parse({ appId: APP_ID, privateKey, apiUrl: fake.url, paceWrites: false }), log);
}

function run(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'git',
      args,
      {
        cwd,
        env: {
          PATH: process.env.PATH,
          HOME: work,
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_TERMINAL_PROMPT: '0',
          GIT_AUTHOR_NAME: 'Coder',
          GIT_AUTHOR_EMAIL: 'coder@example.com',
          GIT_COMMITTER_NAME: 'Coder',
          GIT_COMMITTER_EMAIL: 'coder@example.com',
        },
      },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout: stdout.trim(), stderr }),
    );
  });
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const result = await run(cwd, args);
  if (result.code !== 0) throw new Error(`git ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** `http://x-access-token:<token>@host/owner/repo.git`, as a git gateway would build it. */
function authedRemote(client: GitHubClient, repo: string, token: string): string {
  const url = new URL(client.gitRemoteUrl({ owner: OWNER, repo }));
  url.username = 'x-access-token';
  url.password = token;
  return url.toString();
}

async function cloneWith(remote: string): Promise<string> {
  const dir = await mkdtemp(join(work, 'clone-'));
  await git(work, 'clone', '--quiet', remote, dir);
  return dir;
}

/** Commits `files` on a new branch of a clone and pushes it; returns the branch's sha. */
async function pushBranch(dir: string, branch: string, files: Record<string, string>, from = 'origin/main'): Promise<string> {
  await git(dir, 'checkout', '--quiet', '-B', branch, from);
  for (const [path, content] of Object.entries(files)) await writeFile(join(dir, path), content);
  await git(dir, 'add', '--all');
  await git(dir, 'commit', '--quiet', '-m', `change on ${branch}`);
  await git(dir, 'push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`);
  return git(dir, 'rev-parse', 'HEAD');
}

async function githubError(promise: Promise<unknown>): Promise<{ status: number | undefined; message: string }> {
  try {
    await promise;
  } catch (err) {
    if (isStagegateError(err, 'GITHUB_HTTP')) return { status: gitHubStatusOf(err), message: err.message };
    throw err;
  }
  throw new Error('expected a GITHUB_HTTP error');
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sg-fake-github-test-'));
  keyFile = join(work, 'app.pem');
  await writeFile(keyFile, keys.privateKey);
  fake = await startFakeGitHub({
    userTokens: { [TOKEN]: 'stagegate-bot', [ALICE_TOKEN]: 'alice' },
    app: { id: APP_ID, slug: 'stagegate', publicKey: keys.publicKey },
  });
});

afterEach(() => fake.assertNoUnexpected());

afterAll(async () => {
  await fake.close();
  await rm(work, { recursive: true, force: true });
});

describe('GitHub client with a token', () => {
  it('comments and labels an issue through the configured base URL', async () => {
    const repo = await newRepo();
    const issue = fake.addIssue(OWNER, repo, { title: 'Add a health endpoint', user: 'alice' });
    const octokit = await tokenClient().forRepository({ owner: OWNER, repo });

    const { data: comment } = await octokit.rest.issues.createComment({ owner: OWNER, repo, issue_number: issue.number, body: 'On it.' });
    await octokit.rest.issues.addLabels({ owner: OWNER, repo, issue_number: issue.number, labels: ['stagegate', 'in-progress'] });
    const { data: labels } = await octokit.rest.issues.removeLabel({ owner: OWNER, repo, issue_number: issue.number, name: 'in-progress' });
    const { data: updated } = await octokit.rest.issues.updateComment({ owner: OWNER, repo, comment_id: comment.id, body: 'Done.' });

    expect(comment.user?.login).toBe('stagegate-bot');
    expect(labels.map((l) => l.name)).toEqual(['stagegate']);
    expect(updated.body).toBe('Done.');
    expect(fake.requestsTo('POST /repos/{owner}/{repo}/issues/{issue_number}/comments')[0]?.body).toEqual({ body: 'On it.' });
  });

  it('turns a failure into GITHUB_HTTP naming status, method and path (a label that exists is 422)', async () => {
    const repo = await newRepo();
    const octokit = await tokenClient().forRepository({ owner: OWNER, repo });
    await octokit.rest.issues.createLabel({ owner: OWNER, repo, name: 'stagegate', color: '5319e7' });

    const again = await githubError(octokit.rest.issues.createLabel({ owner: OWNER, repo, name: 'stagegate', color: '5319e7' }));
    const missing = await githubError(octokit.rest.issues.get({ owner: OWNER, repo, issue_number: 999 }));

    expect(again).toEqual({ status: 422, message: `GitHub 422 on POST /repos/${OWNER}/${repo}/labels: Validation Failed` });
    expect(missing).toEqual({ status: 404, message: `GitHub 404 on GET /repos/${OWNER}/${repo}/issues/999: Not Found` });
  });

  it('waits out a rate limit until GitHub says it resets, logs it, and succeeds', async () => {
    const repo = await newRepo();
    const issue = fake.addIssue(OWNER, repo, { title: 'Rate limited', user: 'alice' });
    const octokit = await tokenClient().forRepository({ owner: OWNER, repo });
    fake.rateLimitNext('GET /repos/{owner}/{repo}/issues/{issue_number}', 1);

    const started = Date.now();
    const { data } = await octokit.rest.issues.get({ owner: OWNER, repo, issue_number: issue.number });

    expect(data.title).toBe('Rate limited');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(fake.requestsTo('GET /repos/{owner}/{repo}/issues/{issue_number}', (r) => r.params.repo === repo).map((r) => r.status)).toEqual([403, 200]);
    expect(logLines.find((l) => l.msg === 'GitHub rate limit hit')).toMatchObject({ method: 'GET', willRetry: true, retryCount: 0 });
  });

  it('retries a server error', async () => {
    const repo = await newRepo();
    const octokit = await tokenClient().forRepository({ owner: OWNER, repo });
    fake.failNext('GET /repos/{owner}/{repo}', { status: 502, body: { message: 'Server Error' } });

    const { data } = await octokit.rest.repos.get({ owner: OWNER, repo });

    expect(data.default_branch).toBe('main');
    expect(fake.requestsTo('GET /repos/{owner}/{repo}', (r) => r.params.repo === repo).map((r) => r.status)).toEqual([502, 200]);
  });

  it('says GitHub is unreachable when nothing answers at the base URL', async () => {
    const closed = await startFakeGitHub();
    const apiUrl = closed.url;
    await closed.close();
    const client = createGitHubClient(GitHubConfig.parse({ token: TOKEN, apiUrl, paceWrites: false }), log, { retries: 0 });

    const refused = await githubError(client.octokit.rest.repos.get({ owner: OWNER, repo: 'gone' }));

    expect(refused.status).toBeUndefined();
    expect(refused.message).toMatch(/^GitHub unreachable on GET \/repos\/acme\/gone: /);
  });

  it('pages through more than 100 comments', async () => {
    const repo = await newRepo();
    const issue = fake.addIssue(OWNER, repo, { title: 'Busy', user: 'alice' });
    const octokit = await tokenClient().forRepository({ owner: OWNER, repo });
    for (let n = 1; n <= 130; n++) await octokit.rest.issues.createComment({ owner: OWNER, repo, issue_number: issue.number, body: `comment ${n}` });

    const comments = await listAll(
      octokit.paginate.iterator(octokit.rest.issues.listComments, { owner: OWNER, repo, issue_number: issue.number, per_page: 100 }),
      `comments of ${OWNER}/${repo}#${issue.number}`,
    );

    expect(comments.map((c) => c.body)).toEqual(Array.from({ length: 130 }, (_, i) => `comment ${i + 1}`));
    expect(fake.requestsTo('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', (r) => r.params.repo === repo)).toHaveLength(2);
  });

  it('reads a file from the default branch or a named branch through the contents API', async () => {
    const repo = await newRepo({ 'README.md': '# app\n', '.github/stagegate.yml': 'label: go\n' });
    await fake.commitFiles(OWNER, repo, { '.github/stagegate.yml': 'label: other\n', 'README.md': null }, { branch: 'feature' });
    const octokit = await tokenClient().forRepository({ owner: OWNER, repo });
    const at = (path: string, ref?: string) => readRepoFile(octokit, { owner: OWNER, repo, path, ...(ref === undefined ? {} : { ref }) }, 1_000);

    expect(await at('.github/stagegate.yml')).toEqual({ kind: 'file', text: 'label: go\n' });
    expect(await at('.github/stagegate.yml', 'main')).toEqual({ kind: 'file', text: 'label: go\n' });
    expect(await at('.github/stagegate.yml', 'feature')).toEqual({ kind: 'file', text: 'label: other\n' });
    expect(await at('README.md', 'feature')).toEqual({ kind: 'missing' });
    expect(await at('.github')).toEqual({ kind: 'unreadable', reason: 'expected a file, found a directory' });
    expect(await readRepoFile(octokit, { owner: OWNER, repo, path: 'README.md' }, 3)).toEqual({ kind: 'unreadable', reason: 'expected a file of at most 3 bytes, found 6' });
    expect(fake.requestsTo('GET /repos/{owner}/{repo}/contents/{path}', (r) => r.params.path === '.github/stagegate.yml').map((r) => r.query.ref)).toEqual([undefined, 'main', 'feature']);
  });

  it('reads a collaborator permission as GitHub reports it, and users with their type', async () => {
    const repo = await newRepo();
    fake.setPermission(OWNER, repo, 'mona', 'maintain');
    fake.state.user('renovate[bot]');
    const octokit = await tokenClient().forRepository({ owner: OWNER, repo });

    const { data: permission } = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: OWNER, repo, username: 'mona' });
    const { data: bot } = await octokit.rest.users.getByUsername({ username: 'renovate[bot]' });

    expect(permission).toMatchObject({ permission: 'write', role_name: 'maintain' });
    expect(bot.type).toBe('Bot');
  });
});

describe('GitHub client as a GitHub App', () => {
  it('mints one token for the one repository with the least permissions, and reuses it', async () => {
    const repo = await newRepo();
    const issue = fake.addIssue(OWNER, repo, { title: 'App issue', user: 'alice' });
    const client = appClient();
    const before = fake.state.tokenRequests.length;

    const octokit = await client.forRepository({ owner: OWNER, repo });
    await octokit.rest.issues.get({ owner: OWNER, repo, issue_number: issue.number });
    await octokit.rest.issues.createComment({ owner: OWNER, repo, issue_number: issue.number, body: 'from the App' });
    const forGit = await client.installationToken({ owner: OWNER, repo });

    const minted = fake.state.tokenRequests.slice(before);
    expect(minted).toHaveLength(1);
    expect(minted[0]).toMatchObject({ repositories: [repo], permissions: { ...INSTALLATION_PERMISSIONS } });
    expect(forGit.token).toBe(minted[0]?.token);
    expect(forGit.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect(fake.requestsTo('GET /repos/{owner}/{repo}/installation', (r) => r.params.repo === repo)).toHaveLength(1);
    const comment = fake.requestsTo('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', (r) => r.params.repo === repo)[0];
    expect(comment).toMatchObject({ callerKind: 'installation', caller: 'stagegate[bot]', status: 201 });
  });

  it('mints a new token when the old one is refused', async () => {
    const repo = await newRepo();
    const client = appClient();
    const octokit = await client.forRepository({ owner: OWNER, repo });
    await octokit.rest.repos.get({ owner: OWNER, repo });
    const before = fake.state.tokenRequests.length;

    fake.expireTokens();
    const { data } = await octokit.rest.repos.get({ owner: OWNER, repo });

    expect(data.name).toBe(repo);
    expect(fake.state.tokenRequests.length).toBe(before + 1);
  });

  it('cannot create a check run with the default permissions (checks: read), and can when asked for checks: write', async () => {
    const repo = await newRepo();
    const client = appClient();
    const sha = (await (await client.forRepository({ owner: OWNER, repo })).rest.repos.getBranch({ owner: OWNER, repo, branch: 'main' })).data.commit.sha;

    const readOnly = await githubError((await client.forRepository({ owner: OWNER, repo })).rest.checks.create({ owner: OWNER, repo, name: 'stagegate', head_sha: sha }));
    const writer = await client.forRepository({ owner: OWNER, repo }, { permissions: { ...INSTALLATION_PERMISSIONS, checks: 'write' } });
    const { data: check } = await writer.rest.checks.create({ owner: OWNER, repo, name: 'stagegate', head_sha: sha, status: 'in_progress' });
    await writer.rest.checks.update({ owner: OWNER, repo, check_run_id: check.id, conclusion: 'success' });
    const { data: listed } = await writer.rest.checks.listForRef({ owner: OWNER, repo, ref: 'main' });

    expect(readOnly.status).toBe(403);
    expect(listed.check_runs.map((r) => [r.name, r.status, r.conclusion])).toEqual([['stagegate', 'completed', 'success']]);
  });

  it('is refused when its JWT is signed with another key', async () => {
    const repo = await newRepo();
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

    const refused = await githubError(appClient(other).forRepository({ owner: OWNER, repo }));

    expect(refused.status).toBe(401);
    expect(refused.message).toContain(`GET /repos/${OWNER}/${repo}/installation`);
  });

  it('reads the private key from PEM text with escaped newlines, or from a file', async () => {
    const escaped = keys.privateKey.trim().replace(/\n/g, '\\n');

    expect(readPrivateKey(escaped)).toBe(readPrivateKey(keyFile));
    expect(readPrivateKey(await readFile(keyFile, 'utf8'))).toContain('-----BEGIN PRIVATE KEY-----');
    expect(() => readPrivateKey(join(work, 'missing.pem'))).toThrow(/GITHUB_APP_PRIVATE_KEY is neither PEM text .* nor a readable file/);
  });
});

describe('git over HTTP and pull requests', () => {
  it('refuses git without a token', async () => {
    const repo = await newRepo();

    const result = await run(work, ['ls-remote', tokenClient().gitRemoteUrl({ owner: OWNER, repo })]);

    expect(result.code).not.toBe(0);
    expect(fake.gitRequests.at(-1)).toMatchObject({ status: 401, user: undefined });
  });

  it('clones, pushes a branch, opens a pull request from it and merges it; a fresh clone has the merge', async () => {
    const repo = await newRepo({ 'README.md': '# app\n' });
    const client = tokenClient();
    const octokit = await client.forRepository({ owner: OWNER, repo });
    const clone = await cloneWith(authedRemote(client, repo, TOKEN));

    const headSha = await pushBranch(clone, 'stagegate/t-1', { 'health.js': 'export const ok = true;\n' });
    const { data: created } = await octokit.rest.pulls.create({ owner: OWNER, repo, title: 'Add health', head: 'stagegate/t-1', base: 'main', body: 'Closes #1' });
    const { data: pr } = await octokit.rest.pulls.get({ owner: OWNER, repo, pull_number: created.number });
    const duplicate = await githubError(octokit.rest.pulls.create({ owner: OWNER, repo, title: 'Again', head: 'stagegate/t-1', base: 'main' }));
    const { data: merged } = await octokit.rest.pulls.merge({ owner: OWNER, repo, pull_number: pr.number, sha: headSha, merge_method: 'merge' });
    await octokit.rest.git.deleteRef({ owner: OWNER, repo, ref: 'heads/stagegate/t-1' });

    expect(fake.pushes.at(-1)).toMatchObject({
      repo,
      user: 'stagegate-bot',
      updates: [{ ref: 'refs/heads/stagegate/t-1', after: headSha, created: true, forced: false, applied: true }],
    });
    expect(pr).toMatchObject({ head: { ref: 'stagegate/t-1', sha: headSha }, base: { ref: 'main' }, mergeable: true, mergeable_state: 'clean', commits: 1, changed_files: 1 });
    expect(duplicate.status).toBe(422);
    expect(merged.merged).toBe(true);
    const fresh = await cloneWith(authedRemote(client, repo, TOKEN));
    expect(await git(fresh, 'rev-parse', 'HEAD')).toBe(merged.sha);
    expect((await git(fresh, 'log', '-1', '--format=%P')).split(' ')).toEqual([expect.any(String), headSha]);
    expect(await readFile(join(fresh, 'health.js'), 'utf8')).toBe('export const ok = true;\n');
    expect(await git(fresh, 'ls-remote', '--heads', 'origin')).not.toContain('stagegate/t-1');
    const { data: after } = await octokit.rest.pulls.get({ owner: OWNER, repo, pull_number: pr.number });
    expect(after).toMatchObject({ state: 'closed', merged: true, merge_commit_sha: merged.sha, merged_by: { login: 'stagegate-bot' } });
  });

  it('squash-merges into one commit on the base branch', async () => {
    const repo = await newRepo();
    const client = tokenClient();
    const octokit = await client.forRepository({ owner: OWNER, repo });
    const clone = await cloneWith(authedRemote(client, repo, TOKEN));
    await pushBranch(clone, 'feature', { 'a.txt': 'a\n' });
    await pushBranch(clone, 'feature', { 'b.txt': 'b\n' }, 'HEAD');
    const { data: pr } = await octokit.rest.pulls.create({ owner: OWNER, repo, title: 'Two files', head: 'feature', base: 'main' });

    const { data: merged } = await octokit.rest.pulls.merge({ owner: OWNER, repo, pull_number: pr.number, merge_method: 'squash' });

    await git(clone, 'fetch', '--quiet', 'origin');
    expect(await git(clone, 'log', '-1', '--format=%P%n%s', merged.sha)).toBe(`${await git(clone, 'rev-parse', 'origin/main~1')}\nTwo files (#${pr.number})`);
    expect(await git(clone, 'ls-tree', '--name-only', 'origin/main')).toContain('b.txt');
  });

  it('records a force push as not a fast-forward', async () => {
    const repo = await newRepo();
    const client = tokenClient();
    const clone = await cloneWith(authedRemote(client, repo, TOKEN));
    await pushBranch(clone, 'rewrite', { 'x.txt': 'one\n' });

    await git(clone, 'commit', '--quiet', '--amend', '-m', 'rewritten');
    await git(clone, 'push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/rewrite');

    expect(fake.pushes.filter((p) => p.repo === repo).map((p) => p.updates[0]?.forced)).toEqual([false, true]);
  });

  it('pushes with an installation token, and answers 405 for a pull request that conflicts', async () => {
    const repo = await newRepo({ 'config.txt': 'port=80\n' });
    const client = appClient();
    const { token } = await client.installationToken({ owner: OWNER, repo });
    const octokit = await client.forRepository({ owner: OWNER, repo });
    const clone = await cloneWith(authedRemote(client, repo, token));
    await pushBranch(clone, 'one', { 'config.txt': 'port=81\n' });
    await pushBranch(clone, 'two', { 'config.txt': 'port=82\n' });
    const { data: first } = await octokit.rest.pulls.create({ owner: OWNER, repo, title: 'One', head: 'one', base: 'main' });
    const { data: second } = await octokit.rest.pulls.create({ owner: OWNER, repo, title: 'Two', head: 'two', base: 'main' });

    await octokit.rest.pulls.merge({ owner: OWNER, repo, pull_number: first.number });
    const { data: conflicted } = await octokit.rest.pulls.get({ owner: OWNER, repo, pull_number: second.number });
    const refused = await githubError(octokit.rest.pulls.merge({ owner: OWNER, repo, pull_number: second.number }));

    expect(fake.pushes.filter((p) => p.repo === repo).every((p) => p.user === 'stagegate[bot]')).toBe(true);
    expect(conflicted).toMatchObject({ mergeable: false, mergeable_state: 'dirty' });
    expect(refused).toEqual({ status: 405, message: `GitHub 405 on PUT /repos/${OWNER}/${repo}/pulls/${second.number}/merge: Pull Request is not mergeable` });
  });

  it('takes a review with line comments on the diff, and refuses a line outside it or an approval of your own pull request', async () => {
    const repo = await newRepo({ 'app.js': 'one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n' });
    const client = tokenClient();
    const octokit = await client.forRepository({ owner: OWNER, repo });
    const clone = await cloneWith(authedRemote(client, repo, TOKEN));
    await pushBranch(clone, 'change', { 'app.js': 'one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nTEN\n' });
    const { data: pr } = await octokit.rest.pulls.create({ owner: OWNER, repo, title: 'Shout', head: 'change', base: 'main' });
    const alice = await createGitHubClient(GitHubConfig.parse({ token: ALICE_TOKEN, apiUrl: fake.url, paceWrites: false }), log).forRepository({ owner: OWNER, repo });

    const { data: review } = await alice.rest.pulls.createReview({
      owner: OWNER,
      repo,
      pull_number: pr.number,
      event: 'REQUEST_CHANGES',
      body: 'Please do not shout.',
      comments: [{ path: 'app.js', line: 10, body: 'lower case' }],
    });
    const outside = await githubError(alice.rest.pulls.createReview({ owner: OWNER, repo, pull_number: pr.number, event: 'COMMENT', comments: [{ path: 'app.js', line: 1, body: 'x' }] }));
    const own = await githubError(octokit.rest.pulls.createReview({ owner: OWNER, repo, pull_number: pr.number, event: 'APPROVE' }));
    const { data: comments } = await octokit.rest.pulls.listReviewComments({ owner: OWNER, repo, pull_number: pr.number });

    expect(review).toMatchObject({ state: 'CHANGES_REQUESTED', user: { login: 'alice' } });
    expect(comments.map((c) => [c.path, c.line, c.body, c.pull_request_review_id])).toEqual([['app.js', 10, 'lower case', review.id]]);
    expect(outside.status).toBe(422);
    expect(own.status).toBe(422);
  });
});

describe('review threads', () => {
  it('takes a reply in a thread, lists the threads over GraphQL at the base URL, and resolves one; a reply to a reply is refused', async () => {
    const repo = await newRepo({ 'app.js': 'one\ntwo\n' });
    const client = tokenClient();
    const octokit = await client.forRepository({ owner: OWNER, repo });
    const clone = await cloneWith(authedRemote(client, repo, TOKEN));
    await pushBranch(clone, 'change', { 'app.js': 'ONE\nTWO\n' });
    const { data: pr } = await octokit.rest.pulls.create({ owner: OWNER, repo, title: 'Shout', head: 'change', base: 'main' });
    const alice = await createGitHubClient(GitHubConfig.parse({ token: ALICE_TOKEN, apiUrl: fake.url, paceWrites: false }), log).forRepository({ owner: OWNER, repo });
    const { data: review } = await alice.rest.pulls.createReview({ owner: OWNER, repo, pull_number: pr.number, event: 'COMMENT', comments: [{ path: 'app.js', line: 1, body: 'a' }, { path: 'app.js', line: 2, body: 'b' }] });
    const [a, b] = fake.state.repo(OWNER, repo)!.reviewComments.filter((c) => c.reviewId === review.id);

    const { data: reply } = await octokit.rest.pulls.createReplyForReviewComment({ owner: OWNER, repo, pull_number: pr.number, comment_id: a!.id, body: 'done' });
    const nested = await githubError(octokit.rest.pulls.createReplyForReviewComment({ owner: OWNER, repo, pull_number: pr.number, comment_id: reply.id, body: 'again' }));
    const query = 'query($owner: String!, $repo: String!, $number: Int!) { repository(owner: $owner, name: $repo) { pullRequest(number: $number) { reviewThreads(first: 100) { nodes { id isResolved comments(first: 1) { nodes { databaseId } } } } } } }';
    const before = await octokit.graphql<{ repository: { pullRequest: { reviewThreads: { nodes: Array<{ id: string; isResolved: boolean; comments: { nodes: Array<{ databaseId: number }> } }> } } } }>(query, { owner: OWNER, repo, number: pr.number });
    const threadOfA = before.repository.pullRequest.reviewThreads.nodes.find((t) => t.comments.nodes[0]?.databaseId === a!.id)!;
    await octokit.graphql('mutation($threadId: ID!) { resolveReviewThread(input: { threadId: $threadId }) { thread { id isResolved } } }', { threadId: threadOfA.id });
    const after = await octokit.graphql<typeof before>(query, { owner: OWNER, repo, number: pr.number });

    expect(reply).toMatchObject({ in_reply_to_id: a!.id, body: 'done', user: { login: 'stagegate-bot' } });
    expect(nested.status).toBe(422);
    expect(before.repository.pullRequest.reviewThreads.nodes.map((t) => [t.comments.nodes[0]?.databaseId, t.isResolved])).toEqual([[a!.id, false], [b!.id, false]]);
    expect(after.repository.pullRequest.reviewThreads.nodes.map((t) => [t.comments.nodes[0]?.databaseId, t.isResolved])).toEqual([[a!.id, true], [b!.id, false]]);
    expect(fake.requests.filter((r) => r.path === '/api/graphql')).toHaveLength(3);
  });
});

describe('checks, workflows and deployments', () => {
  it('reports check runs and the combined status of a ref', async () => {
    const repo = await newRepo();
    const octokit = await tokenClient().forRepository({ owner: OWNER, repo });
    await fake.setCheck(OWNER, repo, 'main', 'test', { conclusion: 'failure' });
    await fake.setStatus(OWNER, repo, 'main', 'ci/lint', 'success');
    await fake.setStatus(OWNER, repo, 'main', 'ci/build', 'pending');

    const { data: checks } = await octokit.rest.checks.listForRef({ owner: OWNER, repo, ref: 'main' });
    const { data: pending } = await octokit.rest.repos.getCombinedStatusForRef({ owner: OWNER, repo, ref: 'main' });
    await fake.setStatus(OWNER, repo, 'main', 'ci/build', 'success');
    const { data: green } = await octokit.rest.repos.getCombinedStatusForRef({ owner: OWNER, repo, ref: 'main' });

    expect(checks.check_runs.map((r) => [r.name, r.conclusion])).toEqual([['test', 'failure']]);
    expect(pending).toMatchObject({ state: 'pending', total_count: 2 });
    expect(green.state).toBe('success');
  });

  it('dispatches a workflow and lists its run until the run completes', async () => {
    const repo = await newRepo();
    fake.addWorkflow(OWNER, repo, { path: 'deploy.yml', name: 'Deploy' });
    const octokit = await tokenClient().forRepository({ owner: OWNER, repo });
    const since = new Date(Date.now() - 1000).toISOString();

    await octokit.rest.actions.createWorkflowDispatch({ owner: OWNER, repo, workflow_id: 'deploy.yml', ref: 'main', inputs: { task: 't-1' } });
    const { data: listed } = await octokit.rest.actions.listWorkflowRunsForRepo({ owner: OWNER, repo, event: 'workflow_dispatch', branch: 'main', created: `>=${since}` });
    const runId = listed.workflow_runs[0]?.id ?? 0;
    fake.completeRun(OWNER, repo, runId, 'success');
    const { data: done } = await octokit.rest.actions.getWorkflowRun({ owner: OWNER, repo, run_id: runId });

    expect(listed.total_count).toBe(1);
    expect(listed.workflow_runs[0]).toMatchObject({ status: 'queued', head_branch: 'main', path: '.github/workflows/deploy.yml' });
    expect(done).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(fake.state.repo(OWNER, repo)?.runs[0]?.inputs).toEqual({ task: 't-1' });
  });

  it('creates a deployment and its statuses, refusing one whose commit statuses failed', async () => {
    const repo = await newRepo();
    const octokit = await tokenClient().forRepository({ owner: OWNER, repo });
    await fake.setStatus(OWNER, repo, 'main', 'ci', 'success');

    const { data: deployment } = await octokit.rest.repos.createDeployment({ owner: OWNER, repo, ref: 'main', environment: 'production', auto_merge: false });
    const id = 'id' in deployment ? deployment.id : 0;
    await octokit.rest.repos.createDeploymentStatus({ owner: OWNER, repo, deployment_id: id, state: 'in_progress' });
    fake.postDeploymentStatus(OWNER, repo, id, { state: 'success', environment_url: 'https://app.example.com' });
    const { data: statuses } = await octokit.rest.repos.listDeploymentStatuses({ owner: OWNER, repo, deployment_id: id });
    await fake.setStatus(OWNER, repo, 'main', 'ci', 'failure');
    const refused = await githubError(octokit.rest.repos.createDeployment({ owner: OWNER, repo, ref: 'main', environment: 'production', auto_merge: false }));

    expect(statuses.map((s) => s.state)).toEqual(['success', 'in_progress']);
    expect(refused.status).toBe(409);
  });
});

describe('fake GitHub', () => {
  it('answers 501 to a route it does not have and reports it as unexpected', async () => {
    const lonely = await startFakeGitHub({ userTokens: { [TOKEN]: 'stagegate-bot' } });
    try {
      await lonely.addRepo({ owner: OWNER, repo: 'app' });
      const client = createGitHubClient(GitHubConfig.parse({ token: TOKEN, apiUrl: lonely.url, paceWrites: false }), log);

      const refused = await githubError(client.octokit.request('GET /repos/{owner}/{repo}/hooks', { owner: OWNER, repo: 'app' }));

      expect(refused.status).toBe(501);
      expect(() => lonely.assertNoUnexpected()).toThrow(/GET \/repos\/acme\/app\/hooks \(no such route\)/);
    } finally {
      await lonely.close();
    }
  });

  it('in strict mode serves only what the test expects, and checks the count', async () => {
    const strict = await startFakeGitHub({ userTokens: { [TOKEN]: 'stagegate-bot' }, strict: true });
    try {
      await strict.addRepo({ owner: OWNER, repo: 'app' });
      strict.expect('GET /repos/{owner}/{repo}', 1);
      const octokit = createGitHubClient(GitHubConfig.parse({ token: TOKEN, apiUrl: strict.url, paceWrites: false }), log).octokit;

      await octokit.rest.repos.get({ owner: OWNER, repo: 'app' });
      strict.assertNoUnexpected();
      const refused = await githubError(octokit.rest.issues.listLabelsForRepo({ owner: OWNER, repo: 'app' }));

      expect(refused.status).toBe(501);
      expect(() => strict.assertNoUnexpected()).toThrow(/GET \/repos\/\{owner\}\/\{repo\}\/labels not allowed/);
    } finally {
      await strict.close();
    }
  });
});
