/**
 * The coder's update round on real git, against the fake GitHub's repositories: the base branch
 * advances with a change that conflicts with the task's branch, which also holds a person's
 * commit. The scripted model resolves the conflict and the merge is pushed as a fast-forward
 * with the person's commit kept; a conflict the model leaves fails the stage naming the file and
 * hunk and pushes nothing; a clean merge is pushed without a model call.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCoderHandler } from '../../../agents/coder/worker.js';
import type { JobContext, JobOutcome } from '../../../core/bus/job-worker.js';
import type { ImplementRequest } from '../../../core/bus/messages.js';
import { CoderConfig, ModelConfig } from '../../../core/config.js';
import { git } from '../../../core/git/git.js';
import { createLogger } from '../../../core/log.js';
import { createTurnClient } from '../../../core/model/turn.js';
import { createSandbox, type Sandbox } from '../../../core/sandbox/sandbox.js';
import { startScriptedModelServer, type Answer, type ScriptedModelServer } from '../../../core/scripted-model/index.js';
import { isAncestor } from '../../fakes/github/bare-repo.js';
import { startFakeGitHub, type FakeGitHub } from '../../fakes/github/server.js';

const log = createLogger({ level: 'silent' });
const TOKEN = 'ghp_coder_update_test_token_01';
const BRANCH = 'stagegate/t-up';
let sandbox: Sandbox;
let model: ScriptedModelServer | undefined;
let github: FakeGitHub | undefined;

beforeAll(async () => {
  sandbox = await createSandbox({ allowUnsandboxed: true, log });
});

afterEach(async () => {
  await model?.close();
  await github?.close();
  model = undefined;
  github = undefined;
});

const FILES = {
  'src/greeting.js': 'export const greeting = "hi";\n',
  'src/other.js': 'export const other = 1;\n',
  'check.js': "import { greeting } from './src/greeting.js';\nif (typeof greeting !== 'string') process.exit(1);\n",
  'package.json': JSON.stringify({ name: 'app', type: 'module', scripts: { test: 'node check.js' } }),
};

function call(id: string, name: string, args: Record<string, unknown>) {
  return { type: 'function_call', id: `fc_${id}`, call_id: `call_${id}`, name, arguments: JSON.stringify(args), status: 'completed' };
}

interface BranchShape {
  /** A person's commit on the branch after Stagegate's (default true). */
  person?: boolean;
  /** Further greetings Stagegate's later commits write, each its own commit. */
  laterGreetings?: string[];
}

/**
 * acme/app with the task's branch: Stagegate's commit changing the greeting, then a person's
 * commit (by the fake's GitHub identity) on the branch; `baseChange` lands on main afterwards.
 */
async function setup(baseChange: Record<string, string>, answers: Answer[], coder: Partial<CoderConfig> = {}, shape: BranchShape = {}) {
  github = await startFakeGitHub({ userTokens: { [TOKEN]: 'stagegate-bot' } });
  const repo = await github.addRepo({ owner: 'acme', repo: 'app', files: FILES });
  github.setPermission('acme', 'app', 'stagegate-bot', 'write');
  const url = new URL(`${github.gitUrl}/acme/app.git`);
  url.username = 'x-access-token';
  url.password = TOKEN;
  const parent = await mkdtemp(join(tmpdir(), 'sg-update-seed-'));
  await git(['clone', '--quiet', url.toString(), 'seed'], { cwd: parent });
  const seed = join(parent, 'seed');
  await git(['checkout', '--quiet', '-b', BRANCH], { cwd: seed });
  await writeFile(join(seed, 'src/greeting.js'), 'export const greeting = "hi there";\n');
  await git(['commit', '--quiet', '-am', 'Greet warmly\n\nStagegate-Task: t-up (round 1)'], { cwd: seed });
  for (const [i, greeting] of (shape.laterGreetings ?? []).entries()) {
    await writeFile(join(seed, 'src/greeting.js'), `export const greeting = "${greeting}";\n`);
    await git(['commit', '--quiet', '-am', `Greet again\n\nStagegate-Task: t-up (round ${i + 2})`], { cwd: seed });
  }
  await git(['push', '--quiet', 'origin', `HEAD:refs/heads/${BRANCH}`], { cwd: seed });
  // '': no person's commit.
  const human = shape.person === false ? '' : await github.commitFiles('acme', 'app', { 'src/other.js': 'export const other = 2;\n' }, { branch: BRANCH, message: 'Bump other' });
  const base = await github.commitFiles('acme', 'app', baseChange, { message: 'Change on main' });
  const tipBefore = (await git(['rev-parse', `refs/heads/${BRANCH}`], { cwd: repo.dir })).trim();

  model = await startScriptedModelServer({ script: { answers: {} } });
  model.enqueue('coder', ...answers);
  const handle = createCoderHandler({
    turnClient: createTurnClient(ModelConfig.parse({ apiKey: 'k', baseUrl: model.url, maxRetries: 0 }), 'coder', log),
    workDir: await mkdtemp(join(tmpdir(), 'sg-update-work-')),
    commandTimeoutMs: 60_000,
    coder: CoderConfig.parse(coder),
    price: undefined,
    sandbox: async () => sandbox,
  });
  const progress: string[] = [];
  const ctx: JobContext = { log, progress: async (message) => void progress.push(message) };
  const job: ImplementRequest = {
    type: 'implement.request',
    taskId: 't-up',
    msgId: 't-up:implement:2',
    sentAt: '2026-01-01T00:00:00.000Z',
    task: { repo: url.toString(), title: 'Greet warmly', body: '', base: 'main', submittedBy: 'tester' },
    attempt: 2,
    plan: { summary: 'greet', steps: [{ title: 'greet', detail: '' }], filesToTouch: ['src/greeting.js'], risks: [], acceptanceChecks: [] },
    branch: BRANCH,
    round: 2,
    reviewComments: [],
    feedback: [],
    approvedCommands: [],
    update: { baseSha: base, conflicts: true },
  };
  return { repo: repo.dir, handle, ctx, job, progress, human, base, tipBefore };
}

const RESOLVE = `*** Begin Patch
*** Update File: src/greeting.js
@@
-<<<<<<< HEAD
-export const greeting = "hi there";
-=======
-export const greeting = "hello";
->>>>>>> origin/main
+export const greeting = "hello there";
*** End Patch`;

describe('coder update round', () => {
  it('merges the conflicting base, has the model resolve it, and pushes the merge as a fast-forward keeping the person\'s commit', async () => {
    const t = await setup({ 'src/greeting.js': 'export const greeting = "hello";\n' }, [
      { output: [call('1', 'apply_patch', { patch: RESOLVE }), call('2', 'finish', { summary: 'Merged main; kept both greetings' })] },
    ]);

    const outcome = await t.handle(t.job, t.ctx);

    expect(outcome).toMatchObject({ type: 'code.committed', branch: BRANCH, summary: 'Merged main; kept both greetings' });
    const committed = outcome as Extract<JobOutcome, { type: 'code.committed' }>;
    expect(committed.foreignCommits).toEqual([{ sha: t.human, author: 'GitHub <noreply@github.com>', subject: 'Bump other' }]);
    const tip = (await git(['rev-parse', `refs/heads/${BRANCH}`], { cwd: t.repo })).trim();
    expect(tip).toBe(committed.commit);
    // Nothing rewritten: the old tip, the person's commit and the base are all in the new head's history.
    expect(await isAncestor(t.repo, t.tipBefore, tip)).toBe(true);
    expect(await isAncestor(t.repo, t.human, tip)).toBe(true);
    expect(await isAncestor(t.repo, t.base, tip)).toBe(true);
    expect((await git(['show', `${tip}:src/greeting.js`], { cwd: t.repo }))).toBe('export const greeting = "hello there";\n');
    expect((await git(['show', `${tip}:src/other.js`], { cwd: t.repo }))).toBe('export const other = 2;\n');
    const pushes = github?.pushes.filter((p) => p.updates.some((u) => u.ref === `refs/heads/${BRANCH}`)) ?? [];
    expect(pushes.flatMap((p) => p.updates).some((u) => u.forced)).toBe(false);
    // The model saw the conflict, both sides, and was told to keep the person's commit.
    const input = JSON.stringify(model?.requests[0]?.body.input);
    expect(input).toContain('src/greeting.js (lines 1-5)');
    expect(input).toContain('Bump other');
    expect(t.progress).toContain('tests: npm test → exit 0');
  });

  it('refuses finish while conflict markers remain, and fails the stage naming the file and hunk, pushing nothing', async () => {
    const t = await setup({ 'src/greeting.js': 'export const greeting = "hello";\n' }, [
      { output: [call('1', 'finish', { summary: 'done?' })] },
      { output: [call('2', 'read_file', { path: 'src/greeting.js', startLine: null, endLine: null })] },
    ], { maxTurns: 2 });

    const outcome = await t.handle(t.job, t.ctx);

    expect(outcome).toMatchObject({ type: 'job.failed', stage: 'implement' });
    const reason = (outcome as Extract<JobOutcome, { type: 'job.failed' }>).reason;
    expect(reason).toMatch(/^could not merge main into stagegate\/t-up: conflicts remain in src\/greeting\.js \(lines 1-5\)/);
    expect(reason).toContain('export const greeting = "hello";');
    const told = JSON.stringify(model?.requests[1]?.body.input);
    expect(told).toContain('Conflicts remain, so the merge is not finished: src/greeting.js (lines 1-5)');
    expect((await git(['rev-parse', `refs/heads/${BRANCH}`], { cwd: t.repo })).trim()).toBe(t.tipBefore);
    expect(github?.pushes.some((p) => p.updates.some((u) => u.ref === `refs/heads/${BRANCH}` && u.after !== t.tipBefore && u.before === t.tipBefore))).toBe(false);
  });

  it('rebases Stagegate\'s commits onto a conflicting base one at a time, the model resolving each, and replaces the branch with a lease', async () => {
    const write = (greeting: string) => call(greeting.length.toString(), 'shell', { command: `printf 'export const greeting = "${greeting}";\\n' > src/greeting.js`, workdir: null, timeoutMs: null });
    const t = await setup(
      { 'src/greeting.js': 'export const greeting = "hello";\n' },
      [
        { output: [write('hello there'), call('f1', 'finish', { summary: 'first commit resolved' })] },
        { output: [write('hello there!'), call('f2', 'finish', { summary: 'Rebased onto main; both commits keep the new greeting' })] },
      ],
      {},
      { person: false, laterGreetings: ['hi there!'] },
    );

    const outcome = await t.handle({ ...t.job, update: { baseSha: t.base, conflicts: true, strategy: 'rebase' } }, t.ctx);

    expect(outcome).toMatchObject({ type: 'code.committed', branch: BRANCH, summary: 'Rebased onto main; both commits keep the new greeting' });
    const committed = outcome as Extract<JobOutcome, { type: 'code.committed' }>;
    expect(committed.foreignCommits).toBeUndefined();
    const tip = (await git(['rev-parse', `refs/heads/${BRANCH}`], { cwd: t.repo })).trim();
    expect(tip).toBe(committed.commit);
    // A straight line of Stagegate's two commits on top of main: no merge commit, the old tip replaced.
    expect(await isAncestor(t.repo, t.base, tip)).toBe(true);
    expect(await isAncestor(t.repo, t.tipBefore, tip)).toBe(false);
    expect((await git(['rev-list', '--merges', `${t.base}..${tip}`], { cwd: t.repo })).trim()).toBe('');
    expect((await git(['log', '--format=%s', `${t.base}..${tip}`], { cwd: t.repo })).trim().split('\n')).toEqual(['Greet again', 'Greet warmly']);
    expect(await git(['show', `${tip}:src/greeting.js`], { cwd: t.repo })).toBe('export const greeting = "hello there!";\n');
    expect(await git(['show', `${tip}~1:src/greeting.js`], { cwd: t.repo })).toBe('export const greeting = "hello there";\n');
    const updates = github?.pushes.flatMap((p) => p.updates).filter((u) => u.ref === `refs/heads/${BRANCH}` && u.before === t.tipBefore) ?? [];
    expect(updates).toEqual([expect.objectContaining({ after: tip, forced: true, applied: true })]);
    // The model was told it is a rebase, and at the first finish where the next commit conflicts.
    expect(JSON.stringify(model?.requests[0]?.body.input)).toContain('one at a time (a rebase)');
    expect(JSON.stringify(model?.requests[1]?.body.input)).toContain('the rebase moved on, but the next commit conflicts in src/greeting.js');
    expect(t.progress.some((p) => p.includes('the next commit conflicts in src/greeting.js'))).toBe(true);
  });

  it('merges instead of rebasing a branch that holds a person\'s commit, never rewriting it', async () => {
    const t = await setup({ 'README.md': '# app, now documented\n' }, []);

    const outcome = await t.handle({ ...t.job, update: { baseSha: t.base, conflicts: false, strategy: 'rebase' } }, t.ctx);

    expect(outcome).toMatchObject({ type: 'code.committed', summary: 'Merged main into stagegate/t-up; it merged cleanly and the checks pass.' });
    const tip = (await git(['rev-parse', `refs/heads/${BRANCH}`], { cwd: t.repo })).trim();
    expect(await isAncestor(t.repo, t.human, tip)).toBe(true);
    expect(await isAncestor(t.repo, t.tipBefore, tip)).toBe(true);
    expect(t.progress).toContain("not rebasing: the branch holds a person's commit, which Stagegate never rewrites; merging main instead");
    expect(github?.pushes.flatMap((p) => p.updates).some((u) => u.forced)).toBe(false);
  });

  it('rebases a branch of Stagegate\'s commits that applies cleanly without asking the model', async () => {
    const t = await setup({ 'README.md': '# app, now documented\n' }, [], {}, { person: false });

    const outcome = await t.handle({ ...t.job, update: { baseSha: t.base, conflicts: false, strategy: 'rebase' } }, t.ctx);

    expect(outcome).toMatchObject({ type: 'code.committed', usage: { calls: 0 }, summary: 'Rebased stagegate/t-up onto main; every commit applied cleanly and the checks pass.' });
    const tip = (await git(['rev-parse', `refs/heads/${BRANCH}`], { cwd: t.repo })).trim();
    expect((await git(['rev-parse', `${tip}~1`], { cwd: t.repo })).trim()).toBe(t.base);
    expect(model?.requests).toHaveLength(0);
  });

  it('pushes a clean merge whose tests pass without asking the model', async () => {
    const t = await setup({ 'README.md': '# app, now documented\n' }, []);

    const outcome = await t.handle({ ...t.job, update: { baseSha: 'abcdef1', conflicts: false } }, t.ctx);

    expect(outcome).toMatchObject({ type: 'code.committed', usage: { calls: 0 } });
    const tip = (await git(['rev-parse', `refs/heads/${BRANCH}`], { cwd: t.repo })).trim();
    expect(await isAncestor(t.repo, t.human, tip)).toBe(true);
    expect(await isAncestor(t.repo, t.base, tip)).toBe(true);
    expect(model?.requests).toHaveLength(0);
    expect(github?.pushes.flatMap((p) => p.updates).some((u) => u.forced)).toBe(false);
  });
});
