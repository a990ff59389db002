/**
 * The git gateway on serve's HTTP server, against the fake GitHub as an App (git there needs an
 * installation token): an agent clones and pushes with a plain URL and no credentials; the
 * gateway adds a token scoped to the one repository; it passes only the task's own branch,
 * created or fast-forwarded, and refuses other refs, deletions, force pushes and commits that add
 * a secret in git's own protocol, before anything reaches GitHub.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { loadConfig } from '../../core/config.js';
import { isStagegateError } from '../../core/errors.js';
import { createGitHubClient } from '../../core/github/client.js';
import { git } from '../../core/git/git.js';
import { gatewayCloneUrl, gitGatewayRoutes } from '../../orchestrator/github/git-gateway.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { startHttpServer, type RunningHttpServer } from '../../orchestrator/serve/http-server.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github/server.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { AWS_ACCESS_KEY_ID, GITHUB_TOKEN, ORDINARY_CODE, PRIVATE_KEY_PEM } from '../helpers/fake-secrets.js';
import { waitFor } from '../helpers/wait-for.js';

const OWNER = 'acme';
const APP_ID = 5151;
const silent = pino({ level: 'silent' });
/** The gateway's log lines, to show no secret value reaches them. */
const gatewayLogLines: string[] = [];
const gatewayLog = pino({ level: 'debug' }, { write: (line: string) => void gatewayLogLines.push(line) });
const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });

let nats: TestNatsServer;
let nc: NatsConnection;
let orchestrator: RunningOrchestrator;
let tasks: TaskClient;
let fake: FakeGitHub;
let server: RunningHttpServer;
let work: string;
let n = 0;

beforeAll(async () => {
  nats = await startTestNatsServer();
  nc = await connectBus(nats.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  orchestrator = await startOrchestrator({ nc, log: silent });
  tasks = await createTaskClient(nc);
  fake = await startFakeGitHub({ app: { id: APP_ID, publicKey: keys.publicKey } });
  work = await mkdtemp(join(tmpdir(), 'sg-gateway-test-'));
  const keyFile = join(work, 'app.pem');
  await writeFile(keyFile, keys.privateKey);
  const config = loadConfig({ env: { GITHUB_APP_ID: String(APP_ID), GITHUB_APP_PRIVATE_KEY: keyFile, GITHUB_API_URL: fake.url, GITHUB_GIT_URL: fake.gitUrl, STAGEGATE_GITHUB_PACE_WRITES: 'false' } });
  const github = createGitHubClient(config.github, silent, { retries: 0 });
  server = await startHttpServer({ host: '127.0.0.1', port: 0, log: silent, routes: [gitGatewayRoutes({ tasks, github, log: gatewayLog })] });
}, 60_000);

afterAll(async () => {
  await server.close();
  await orchestrator.stop();
  await nc.drain();
  await nats.cleanup();
  await fake.close();
  await rm(work, { recursive: true, force: true });
});

interface Scene {
  repo: string;
  taskId: string;
  branch: string;
  url: string;
  /** The agent's clone, made through the gateway. */
  clone: string;
  run(args: string[], cwd?: string): Promise<string>;
}

let scene: Scene;

/** A repository with an issue's task (in planning: no agent takes its jobs here) and an agent's clone through the gateway. */
async function newScene(): Promise<Scene> {
  n++;
  const repo = `app${n}`;
  const fakeRepo = await fake.addRepo({ owner: OWNER, repo, files: { 'README.md': '# app\n' } });
  const taskId = `t-gateway${n}`;
  const branch = `stagegate/${n}-fix-it`;
  const url = gatewayCloneUrl(`${server.url}/git`, taskId, { owner: OWNER, repo });
  await tasks.submit({
    taskId,
    spec: { repo: url, title: 'Fix it', body: '', base: 'main', submittedBy: 'github:wendy', branch, source: { kind: 'github', owner: OWNER, repo, issueNumber: n, ...(fakeRepo.installationId === undefined ? {} : { installationId: fakeRepo.installationId }) } },
    policies: { plan: { approvers: ['alice'], required: 1, autoApprove: false }, review: { approvers: ['alice'], required: 1, autoApprove: false }, deploy: { approvers: ['alice'], required: 1, autoApprove: false } },
    maxReviewRounds: 1,
  });
  await waitFor(`task ${taskId} recorded`, async () => (await tasks.get(taskId).catch(() => undefined)) ?? undefined);
  const parent = await mkdtemp(join(work, 'agent-'));
  const clone = join(parent, 'clone');
  const run = (args: string[], cwd = clone) => git(args, { cwd });
  await run(['clone', '--quiet', url, clone], parent);
  return { repo, taskId, branch, url, clone, run };
}

async function commit(s: Scene, file: string, content: string): Promise<string> {
  await mkdir(dirname(join(s.clone, file)), { recursive: true });
  await writeFile(join(s.clone, file), content);
  await s.run(['add', '--all']);
  await s.run(['commit', '--quiet', '-m', `Change ${file}`]);
  return (await s.run(['rev-parse', 'HEAD'])).trim();
}

async function gitFailure(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (err) {
    if (isStagegateError(err, 'GIT_FAILED')) return err.message;
    throw err;
  }
  throw new Error('expected git to fail');
}

async function upstreamSha(repo: string, ref: string): Promise<string | undefined> {
  const dir = fake.state.repo(OWNER, repo)?.dir ?? '';
  try {
    return (await git(['rev-parse', '--verify', '--quiet', ref], { cwd: dir })).trim();
  } catch {
    return undefined;
  }
}

const pushesTo = (repo: string) => fake.pushes.filter((p) => p.repo === repo);

beforeEach(async () => {
  scene = await newScene();
});

describe('git gateway', () => {
  it('clones with a plain URL, leaving no credentials in the clone', async () => {
    const config = await readFile(join(scene.clone, '.git', 'config'), 'utf8');

    expect(await scene.run(['remote', 'get-url', 'origin'])).toBe(`${scene.url}\n`);
    expect(config).not.toMatch(/x-access-token|extraheader|credential|password|ghs_|ghp_|@127/i);
    expect(await readFile(join(scene.clone, 'README.md'), 'utf8')).toBe('# app\n');
  });

  it('reaches GitHub with installation tokens scoped to that repository: contents read to fetch, write to push', async () => {
    await scene.run(['checkout', '--quiet', '-b', scene.branch]);
    await commit(scene, 'fix.txt', 'fixed\n');
    await scene.run(['push', '--quiet', 'origin', `HEAD:refs/heads/${scene.branch}`]);

    const requests = fake.state.tokenRequests.filter((t) => t.repositories?.includes(scene.repo));
    expect(requests.map((t) => t.permissions)).toEqual(expect.arrayContaining([{ contents: 'read' }, { contents: 'write' }]));
    expect(requests.every((t) => t.repositories?.length === 1)).toBe(true);
    expect(fake.gitRequests.filter((r) => r.path.includes(`/${scene.repo}.git/`)).every((r) => r.user === 'stagegate[bot]')).toBe(true);
  });

  it("creates the task's branch and fast-forwards it", async () => {
    await scene.run(['checkout', '--quiet', '-b', scene.branch]);
    const first = await commit(scene, 'fix.txt', 'fixed\n');
    await scene.run(['push', '--quiet', 'origin', `HEAD:refs/heads/${scene.branch}`]);
    const second = await commit(scene, 'fix.txt', 'fixed better\n');
    await scene.run(['push', '--quiet', 'origin', `HEAD:refs/heads/${scene.branch}`]);

    expect(await upstreamSha(scene.repo, `refs/heads/${scene.branch}`)).toBe(second);
    expect(pushesTo(scene.repo).flatMap((p) => p.updates)).toEqual([
      expect.objectContaining({ ref: `refs/heads/${scene.branch}`, after: first, created: true, forced: false, applied: true }),
      expect.objectContaining({ ref: `refs/heads/${scene.branch}`, before: first, after: second, created: false, forced: false, applied: true }),
    ]);
  });

  it('refuses a push to main in the git protocol, and nothing reaches GitHub', async () => {
    const main = await upstreamSha(scene.repo, 'refs/heads/main');
    await commit(scene, 'evil.txt', 'straight to main\n');

    const failure = await gitFailure(scene.run(['push', 'origin', 'HEAD:refs/heads/main']));

    expect(failure).toContain(`[remote rejected] HEAD -> main (task ${scene.taskId} may push only refs/heads/${scene.branch})`);
    expect(await upstreamSha(scene.repo, 'refs/heads/main')).toBe(main);
    expect(pushesTo(scene.repo)).toEqual([]);
  });

  it('refuses a push of another stagegate branch', async () => {
    await commit(scene, 'x.txt', 'x\n');

    const failure = await gitFailure(scene.run(['push', 'origin', 'HEAD:refs/heads/stagegate/99-someone-else']));

    expect(failure).toContain('[remote rejected]');
    expect(pushesTo(scene.repo)).toEqual([]);
  });

  it('refuses a force push that rewrites the branch, and the branch keeps its commits', async () => {
    await scene.run(['checkout', '--quiet', '-b', scene.branch]);
    await commit(scene, 'fix.txt', 'fixed\n');
    const pushed = await commit(scene, 'fix.txt', 'fixed twice\n');
    await scene.run(['push', '--quiet', 'origin', `HEAD:refs/heads/${scene.branch}`]);
    await scene.run(['reset', '--quiet', '--hard', 'HEAD~1']);
    await commit(scene, 'other.txt', 'a different history\n');

    const failure = await gitFailure(scene.run(['push', '--force', 'origin', `HEAD:refs/heads/${scene.branch}`]));

    expect(failure).toMatch(/\[remote rejected\] HEAD -> stagegate\/\d+-fix-it \(not a fast-forward of [0-9a-f]{10} \(a force push\)/);
    expect(await upstreamSha(scene.repo, `refs/heads/${scene.branch}`)).toBe(pushed);
    expect(pushesTo(scene.repo).flatMap((p) => p.updates).some((u) => u.forced)).toBe(false);
  });

  it('refuses a force push back to an older commit of the branch', async () => {
    await scene.run(['checkout', '--quiet', '-b', scene.branch]);
    await commit(scene, 'fix.txt', 'fixed\n');
    const pushed = await commit(scene, 'fix.txt', 'fixed twice\n');
    await scene.run(['push', '--quiet', 'origin', `HEAD:refs/heads/${scene.branch}`]);
    await scene.run(['reset', '--quiet', '--hard', 'HEAD~1']);

    const failure = await gitFailure(scene.run(['push', '--force', 'origin', `HEAD:refs/heads/${scene.branch}`]));

    expect(failure).toContain('[remote rejected]');
    expect(await upstreamSha(scene.repo, `refs/heads/${scene.branch}`)).toBe(pushed);
  });

  it('refuses to delete the branch', async () => {
    await scene.run(['checkout', '--quiet', '-b', scene.branch]);
    const pushed = await commit(scene, 'fix.txt', 'fixed\n');
    await scene.run(['push', '--quiet', 'origin', `HEAD:refs/heads/${scene.branch}`]);

    const failure = await gitFailure(scene.run(['push', 'origin', `:refs/heads/${scene.branch}`]));

    expect(failure).toContain('(deleting the branch is not allowed)');
    expect(await upstreamSha(scene.repo, `refs/heads/${scene.branch}`)).toBe(pushed);
  });

  it('fetches what others pushed since the clone', async () => {
    const other = await newScene();
    await other.run(['checkout', '--quiet', '-b', other.branch]);
    const pushed = await commit(other, 'fix.txt', 'fixed\n');
    await other.run(['push', '--quiet', 'origin', `HEAD:refs/heads/${other.branch}`]);
    const again = join(await mkdtemp(join(work, 'agent-')), 'clone');
    await git(['clone', '--quiet', other.url, again], { cwd: work });

    expect((await git(['rev-parse', `origin/${other.branch}`], { cwd: again })).trim()).toBe(pushed);
  });

  it('serves no repository for a task that does not work on it, nor for an unknown task', async () => {
    const elsewhere = gatewayCloneUrl(`${server.url}/git`, scene.taskId, { owner: OWNER, repo: 'other-repo' });
    const unknown = gatewayCloneUrl(`${server.url}/git`, 't-nosuchtask', { owner: OWNER, repo: scene.repo });

    expect(await gitFailure(git(['ls-remote', elsewhere], { cwd: work }))).toContain(`task ${scene.taskId} does not work on ${OWNER}/other-repo`);
    expect(await gitFailure(git(['ls-remote', unknown], { cwd: work }))).toContain('there is no task t-nosuchtask');
  });

  it('closes the repository to a cancelled task', async () => {
    await tasks.cancel(scene.taskId, 'cli:alice', 'not needed');
    await waitFor('the task cancelled', async () => ((await tasks.get(scene.taskId)).state === 'cancelled' ? true : undefined));

    expect(await gitFailure(git(['ls-remote', scene.url], { cwd: work }))).toContain(`task ${scene.taskId} is cancelled`);
  });
});

describe('git gateway, secrets', () => {
  const privateKeyLines = PRIVATE_KEY_PEM.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));

  function expectNowhere(values: readonly string[], ...texts: string[]) {
    const all = [...texts, ...gatewayLogLines, JSON.stringify(pushesTo(scene.repo))].join('\n');
    for (const value of values) expect(all).not.toContain(value);
  }

  it('refuses a new branch whose commit adds an AWS key and a private key, naming file, line and rule, and nothing reaches GitHub', async () => {
    await scene.run(['checkout', '--quiet', '-b', scene.branch]);
    await commit(scene, 'src/aws.ts', `// the client\nexport const accessKeyId = '${AWS_ACCESS_KEY_ID}';\n`);
    await commit(scene, 'deploy/id_rsa', PRIVATE_KEY_PEM);

    const failure = await gitFailure(scene.run(['push', 'origin', `HEAD:refs/heads/${scene.branch}`]));

    expect(failure).toContain(`[remote rejected] HEAD -> ${scene.branch} (secret found: deploy/id_rsa:1 (privatekey/PrivateKey), src/aws.ts:2 (aws/AWSAccessKeyID))`);
    expect(await upstreamSha(scene.repo, `refs/heads/${scene.branch}`)).toBeUndefined();
    expect(pushesTo(scene.repo)).toEqual([]);
    expectNowhere([AWS_ACCESS_KEY_ID, ...privateKeyLines], failure);
  });

  it('refuses a fast-forward that adds a GitHub token even when a later commit of the same push takes it out', async () => {
    await scene.run(['checkout', '--quiet', '-b', scene.branch]);
    const pushed = await commit(scene, 'src/client.ts', 'export const retries = 3;\n');
    await scene.run(['push', '--quiet', 'origin', `HEAD:refs/heads/${scene.branch}`]);
    await commit(scene, 'src/client.ts', `export const retries = 3;\nexport const token = '${GITHUB_TOKEN}';\n`);
    await commit(scene, 'src/client.ts', 'export const retries = 3;\nexport const token = process.env.TOKEN;\n');

    const failure = await gitFailure(scene.run(['push', 'origin', `HEAD:refs/heads/${scene.branch}`]));

    expect(failure).toContain(`[remote rejected] HEAD -> ${scene.branch} (secret found: src/client.ts:2 (github/GITHUB_TOKEN))`);
    expect(await upstreamSha(scene.repo, `refs/heads/${scene.branch}`)).toBe(pushed);
    expect(pushesTo(scene.repo).flatMap((p) => p.updates)).toHaveLength(1);
    expectNowhere([GITHUB_TOKEN], failure);
  });

  it('passes ordinary code that only names secrets, on a new branch and in a fast-forward', async () => {
    await scene.run(['checkout', '--quiet', '-b', scene.branch]);
    await commit(scene, 'src/config.ts', ORDINARY_CODE);
    await scene.run(['push', '--quiet', 'origin', `HEAD:refs/heads/${scene.branch}`]);
    const next = await commit(scene, 'src/config.ts', `${ORDINARY_CODE}export const retries = 3;\n`);
    await scene.run(['push', '--quiet', 'origin', `HEAD:refs/heads/${scene.branch}`]);

    expect(await upstreamSha(scene.repo, `refs/heads/${scene.branch}`)).toBe(next);
  });

});
