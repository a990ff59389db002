/**
 * The coder worker on a real repository (the demo's sample project), with its real tools, the
 * sandbox and git, against the scripted model streaming each turn: a whole session, tests
 * failing at finish, a limit ending the stage, the command gate with the resumed job, and a
 * change that adds a secret (refused at finish, never pushed).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCoderHandler } from '../../../agents/coder/worker.js';
import { DEMO_SCRIPT, DEMO_CODER_TURNS } from '../../../cli/demo/demo-script.js';
import { UNANSWERED_REASON } from '../../../agents/coder/review-answers.js';
import { createSampleRepo } from '../../../cli/demo/sample-repo.js';
import type { JobContext, JobOutcome } from '../../../core/bus/job-worker.js';
import type { ImplementRequest, Usage } from '../../../core/bus/messages.js';
import { CoderConfig, ModelConfig } from '../../../core/config.js';
import { git } from '../../../core/git/git.js';
import { createLogger } from '../../../core/log.js';
import { createTurnClient } from '../../../core/model/turn.js';
import { createSandbox, type Sandbox } from '../../../core/sandbox/sandbox.js';
import { startScriptedModelServer, type Answer, type RecordedRequest, type ScriptedModelServer } from '../../../core/scripted-model/index.js';
import { GITHUB_TOKEN } from '../../helpers/fake-secrets.js';

const log = createLogger({ level: 'silent' });
let sandbox: Sandbox;
let server: ScriptedModelServer | undefined;

beforeAll(async () => {
  sandbox = await createSandbox({ allowUnsandboxed: true, log });
});

afterEach(async () => {
  await server?.close();
  server = undefined;
});

const plan = {
  summary: 'Add slugify(title) to src/textkit.js.',
  steps: [{ title: 'Implement slugify', detail: 'lower-case, dashes between words' }],
  filesToTouch: ['src/textkit.js'],
  risks: [],
  acceptanceChecks: ['npm test passes'],
};

function job(repo: string, overrides: Partial<ImplementRequest> = {}): ImplementRequest {
  return {
    type: 'implement.request',
    taskId: 't-coder',
    msgId: 't-coder:implement:1:dispatch',
    sentAt: '2026-01-01T00:00:00.000Z',
    task: { repo, title: 'Add slugify(title) to textkit', body: '', base: 'main', submittedBy: 'tester' },
    attempt: 1,
    plan,
    branch: 'stagegate/t-coder',
    round: 1,
    reviewComments: [],
    feedback: [],
    approvedCommands: [],
    ...overrides,
  };
}

function call(id: string, name: string, args: Record<string, unknown>) {
  return { type: 'function_call', id: `fc_${id}`, call_id: `call_${id}`, name, arguments: JSON.stringify(args), status: 'completed' };
}

const slugifyPatch = (body: string) => `*** Begin Patch
*** Update File: src/textkit.js
@@
 export function capitalize(text) {
   return text.charAt(0).toUpperCase() + text.slice(1);
 }
+
+export function slugify(text) {
+  ${body}
+}
*** End Patch`;
const goodBody = "return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');";

async function setup(answers: Answer[], coder: Partial<CoderConfig> = {}) {
  server = await startScriptedModelServer({ script: { answers: {} } });
  server.enqueue('coder', ...answers);
  const repo = await createSampleRepo(join(await mkdtemp(join(tmpdir(), 'sg-coder-repo-')), 'textkit'));
  const workDir = await mkdtemp(join(tmpdir(), 'sg-coder-work-'));
  const handle = createCoderHandler({
    turnClient: createTurnClient(ModelConfig.parse({ apiKey: 'k', baseUrl: server.url, maxRetries: 0 }), 'coder', log),
    workDir,
    commandTimeoutMs: 60_000,
    coder: CoderConfig.parse(coder),
    price: undefined,
    sandbox: async () => sandbox,
  });
  const progress: Array<{ message: string; usage?: Usage }> = [];
  const ctx: JobContext = {
    log,
    progress: async (message, usage) => {
      progress.push(usage === undefined ? { message } : { message, usage });
    },
  };
  return { model: server, repo, workDir, handle, ctx, progress };
}

const inputOf = (request: RecordedRequest | undefined) => JSON.stringify(request?.body.input);

function expectAppendOnly(requests: readonly RecordedRequest[]) {
  for (let i = 1; i < requests.length; i++) {
    const before = requests[i - 1]?.body.input as unknown[];
    const now = requests[i]?.body.input as unknown[];
    expect(JSON.stringify(now.slice(0, before.length)), `request ${i + 1} starts with request ${i}'s input`).toBe(JSON.stringify(before));
    expect(requests[i]?.body.instructions).toBe(requests[0]?.body.instructions);
    expect(JSON.stringify(requests[i]?.body.tools)).toBe(JSON.stringify(requests[0]?.body.tools));
  }
}

async function branchFile(repo: string, branch: string, file: string): Promise<string> {
  return git(['show', `${branch}:${file}`], { cwd: repo });
}

describe('coder worker', () => {
  it('reads, runs the failing test, patches, reruns and finishes, then commits and pushes the branch', async () => {
    const firstRound = (DEMO_SCRIPT.answers.coder ?? []).slice(0, DEMO_CODER_TURNS.firstRound) as Answer[];
    const { model, repo, handle, ctx, progress } = await setup(firstRound);

    const outcome = await handle(job(repo), ctx);

    expect(outcome).toMatchObject({ type: 'code.committed', branch: 'stagegate/t-coder', attempts: 1 });
    const committed = outcome as Extract<JobOutcome, { type: 'code.committed' }>;
    expect(committed.usage.calls).toBe(DEMO_CODER_TURNS.firstRound);
    expect(committed.usage.cachedTokens).toBeGreaterThan(0);
    expect((await git(['rev-parse', 'stagegate/t-coder'], { cwd: repo })).trim()).toBe(committed.commit);
    expect(await branchFile(repo, 'stagegate/t-coder', 'src/textkit.js')).toContain('export function slugify(text)');
    // The change's paths and size go on the result: gate policies' auto-approval rules read them.
    expect(committed.changedFiles).toEqual(['src/textkit.js']);
    expect(committed.linesChanged).toBe(7);
    expect(progress.map((p) => p.message)).toEqual([
      'plan: [>] Read src/textkit.js and its test · [ ] Add slugify(text) · [ ] Run npm test',
      'turn 1: update_plan (0/3 done) → ok; read_file src/textkit.js → ok',
      'turn 2: shell npm test → exit 1',
      'plan: [x] Read src/textkit.js and its test · [>] Add slugify(text) · [ ] Run npm test',
      'turn 3: update_plan (1/3 done) → ok; apply_patch src/textkit.js → applied',
      'turn 4: shell npm test → exit 0',
      'tests: npm test → exit 0',
      'turn 5: finish → ok',
    ]);
    // The model saw the real tool outputs: the file, then the failing test.
    expect(inputOf(model.requests[1])).toContain('export function capitalize(text)');
    expect(inputOf(model.requests[2])).toMatch(/exit code 1[^"]*slugify/);
    expectAppendOnly(model.requests);
    expect(model.remaining()).toBe(0);
  });

  it('tells the model when the tests fail at finish, and commits once a later finish passes them', async () => {
    const broken = slugifyPatch('return text;');
    const fixed = `*** Begin Patch\n*** Update File: src/textkit.js\n@@\n-  return text;\n+  ${goodBody}\n*** End Patch`;
    const { model, repo, handle, ctx } = await setup([
      { output: [call('1', 'apply_patch', { patch: broken }), call('2', 'finish', { summary: 'first try' })] },
      { output: [call('3', 'apply_patch', { patch: fixed }), call('4', 'finish', { summary: 'slugify added' })] },
    ]);

    const outcome = await handle(job(repo), ctx);

    expect(outcome).toMatchObject({ type: 'code.committed', summary: 'slugify added', attempts: 2 });
    const told = (model.requests[1]?.body.input as Array<{ type: string; call_id?: string; output?: string }>).find((i) => i.type === 'function_call_output' && i.call_id === 'call_2');
    expect(told?.output).toMatch(/^The tests failed, so the task is not finished:\n`npm test` exited with code 1/);
    expect(await branchFile(repo, 'stagegate/t-coder', 'src/textkit.js')).toContain(goodBody);
  });

  it("shows the review comments' ids to the model and reports one answer per id given, never one for another id", async () => {
    const reviewComments = [
      { file: 'src/textkit.js', line: 3, body: 'Add slugify.', commentId: 501 },
      { file: 'src/textkit.js', line: 4, body: 'Rename capitalize.', commentId: 502 },
      { file: 'src/textkit.js', line: 5, body: 'From the reviewer agent: add a test.' },
    ];
    const answers = [
      { commentId: 501, status: 'addressed', reason: 'added' },
      { commentId: 777, status: 'addressed', reason: 'not a comment I was given' },
    ];
    const { model, repo, handle, ctx } = await setup([{ output: [call('1', 'apply_patch', { patch: slugifyPatch(goodBody) }), call('2', 'finish', { summary: 'slugify added', answers })] }]);

    const outcome = await handle(job(repo, { reviewComments }), ctx);

    expect(inputOf(model.requests[0])).toContain('[comment 501] src/textkit.js:3: Add slugify.');
    expect(inputOf(model.requests[0])).toContain('[comment 502] src/textkit.js:4: Rename capitalize.');
    expect(outcome).toMatchObject({ type: 'code.committed', summary: 'slugify added' });
    expect((outcome as Extract<JobOutcome, { type: 'code.committed' }>).answers).toEqual([
      { commentId: 501, status: 'addressed', reason: 'added' },
      { commentId: 502, status: 'declined', reason: UNANSWERED_REASON },
    ]);
  });

  it('reports no answers when the job had no comments with ids', async () => {
    const { repo, handle, ctx } = await setup([{ output: [call('1', 'apply_patch', { patch: slugifyPatch(goodBody) }), call('2', 'finish', { summary: 'slugify added' })] }]);

    const outcome = await handle(job(repo), ctx);

    expect(outcome).toMatchObject({ type: 'code.committed' });
    expect(outcome).not.toHaveProperty('answers');
  });

  it('ends the stage at the turn limit with the reason, the work so far committed on the branch', async () => {
    const { model, repo, workDir, handle, ctx, progress } = await setup(
      [
        { output: [call('1', 'apply_patch', { patch: slugifyPatch(goodBody) })] },
        { output: [call('2', 'read_file', { path: 'README.md', startLine: null, endLine: null })] },
        { output: [call('3', 'finish', { summary: 'never reached' })] },
      ],
      { maxTurns: 2 },
    );

    const outcome = await handle(job(repo), ctx);

    expect(outcome.type).toBe('job.failed');
    const failed = outcome as Extract<JobOutcome, { type: 'job.failed' }>;
    const head = (await git(['rev-parse', 'stagegate/t-coder'], { cwd: repo })).trim();
    expect(failed.reason).toBe(
      `coder stopped at the turn limit (2 turns) after 2 turns; the work so far is committed on stagegate/t-coder at ${head.slice(0, 10)} and \`stagegate retry\` continues from it; worktree left at ${join(workDir, 't-coder', 'implement-1')}`,
    );
    expect(failed.usage.calls).toBe(2);
    expect(await branchFile(repo, 'stagegate/t-coder', 'src/textkit.js')).toContain('slugify');
    expect(progress.at(-1)?.message).toBe('stopped at the turn limit (2 turns) after 2 turns');
    expect(model.remaining()).toBe(1);
    // Unfinished, but not unchecked: lint and tests ran before the push, and the commit says how they went.
    expect(progress.map((p) => p.message)).toContain('tests: npm test → exit 0');
    expect(await git(['log', '-1', '--format=%B', 'stagegate/t-coder'], { cwd: repo })).toContain('Lint and tests before this push: passed.');
  });

  it('pauses at the command gate with the work committed, and the resumed job runs the approved command', async () => {
    const plan = { steps: [{ step: 'Add slugify', status: 'completed' }, { step: 'Record the approval', status: 'in_progress' }] };
    const { model, repo, handle, ctx } = await setup(
      [
        { output: [call('1', 'update_plan', plan), call('2', 'apply_patch', { patch: slugifyPatch(goodBody) })] },
        {
          output: [
            { type: 'message', id: 'm1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Next I record the approval marker.', annotations: [] }] },
            call('3', 'shell', { command: 'touch approved.txt', workdir: null, timeoutMs: null }),
          ],
        },
        { output: [call('4', 'shell', { command: 'touch approved.txt', workdir: null, timeoutMs: null })] },
        { output: [call('5', 'finish', { summary: 'slugify added, marker recorded' })] },
      ],
      { requireApproval: ['touch'] },
    );

    const paused = await handle(job(repo), ctx);

    expect(paused).toMatchObject({ type: 'command.approval_requested', command: 'touch approved.txt', pattern: 'touch', branch: 'stagegate/t-coder' });
    const request = paused as Extract<JobOutcome, { type: 'command.approval_requested' }>;
    expect(request.commit).toBe((await git(['rev-parse', 'stagegate/t-coder'], { cwd: repo })).trim());
    expect(request.notes).toBe(
      'After 2 turns.\nPlan:\n[x] Add slugify\n[>] Record the approval\nLast note from the coder: Next I record the approval marker.\nWanted to run next: touch approved.txt',
    );
    expect(request.usage.calls).toBe(2);

    const feedback = `A person approved running \`touch approved.txt\`: run it now and carry on. Where you left off: ${request.notes}`;
    const resumed = await handle(job(repo, { msgId: 't-coder:implement:2:dispatch', attempt: 2, approvedCommands: ['touch approved.txt'], feedback: [feedback] }), ctx);

    expect(resumed).toMatchObject({ type: 'code.committed', summary: 'slugify added, marker recorded' });
    const firstOfResumed = inputOf(model.requests[2]);
    expect(firstOfResumed).toContain('A person approved running `touch approved.txt`');
    expect(firstOfResumed).toContain('# Already on the branch');
    expect(firstOfResumed).toContain('# Commands a person approved for this task');
    expect(inputOf(model.requests[3])).toContain('exit code 0');
    const files = await git(['ls-tree', '--name-only', 'stagegate/t-coder'], { cwd: repo });
    expect(files.split('\n')).toContain('approved.txt');
    expect(await branchFile(repo, 'stagegate/t-coder', 'src/textkit.js')).toContain('slugify');
    expect(await readFile(join(repo, 'src/textkit.js'), 'utf8')).not.toContain('slugify');
  });
});

describe('coder worker, a change that adds a secret', () => {
  const addConfig = (line: string) => `*** Begin Patch\n*** Add File: src/config.js\n+// settings\n+${line}\n*** End Patch`;
  const finishOutput = (request: RecordedRequest | undefined, callId: string) =>
    (request?.body.input as Array<{ type: string; call_id?: string; output?: string }>).find((i) => i.type === 'function_call_output' && i.call_id === callId)?.output;

  it('refuses finish naming where the secret is, and pushes nothing when the job ends with it still there', async () => {
    const { model, repo, workDir, handle, ctx, progress } = await setup(
      [
        { output: [call('1', 'apply_patch', { patch: slugifyPatch(goodBody) }), call('2', 'apply_patch', { patch: addConfig(`export const token = '${GITHUB_TOKEN}';`) }), call('3', 'finish', { summary: 'done' })] },
        { output: [call('4', 'finish', { summary: 'done, really' })] },
      ],
      { maxTurns: 2 },
    );

    const outcome = await handle(job(repo), ctx);

    expect(outcome.type).toBe('job.failed');
    const failed = outcome as Extract<JobOutcome, { type: 'job.failed' }>;
    expect(failed.reason).toBe(`push blocked: secret found: src/config.js:2 (github/GITHUB_TOKEN); nothing was pushed; worktree left at ${join(workDir, 't-coder', 'implement-1')}`);
    expect(finishOutput(model.requests[1], 'call_3')).toMatch(/^The change adds what looks like a secret \(a key, token or password\) at src\/config\.js:2 \(github\/GITHUB_TOKEN\)\./);
    // Nothing reached the remote: no branch, no object holding the token.
    await expect(git(['rev-parse', '--verify', '--quiet', 'refs/heads/stagegate/t-coder'], { cwd: repo })).rejects.toThrow();
    expect(await git(['log', '--all', '-p'], { cwd: repo })).not.toContain(GITHUB_TOKEN);
    expect(progress.map((p) => p.message)).toContain('push blocked: secret found: src/config.js:2 (github/GITHUB_TOKEN)');
    expect(JSON.stringify([failed, progress, finishOutput(model.requests[1], 'call_3')])).not.toContain(GITHUB_TOKEN);
  });

  it('commits and pushes once the model takes the secret out', async () => {
    const { repo, handle, ctx } = await setup([
      { output: [call('1', 'apply_patch', { patch: slugifyPatch(goodBody) }), call('2', 'apply_patch', { patch: addConfig(`export const token = '${GITHUB_TOKEN}';`) }), call('3', 'finish', { summary: 'done' })] },
      {
        output: [
          call('4', 'apply_patch', { patch: `*** Begin Patch\n*** Update File: src/config.js\n@@\n-export const token = '${GITHUB_TOKEN}';\n+export const token = process.env.TOKEN;\n*** End Patch` }),
          call('5', 'finish', { summary: 'token read from the environment' }),
        ],
      },
    ]);

    const outcome = await handle(job(repo), ctx);

    expect(outcome).toMatchObject({ type: 'code.committed', summary: 'token read from the environment', attempts: 2 });
    expect(await branchFile(repo, 'stagegate/t-coder', 'src/config.js')).toContain('process.env.TOKEN');
    expect(await git(['log', '--all', '-p'], { cwd: repo })).not.toContain(GITHUB_TOKEN);
  });
});
