/**
 * The reviewer job's security review, end to end within the agent: a real clone of a real
 * repository, the real model client over HTTP to the scripted model, and the result it would
 * publish. The security call comes second, with its own brief and schema; its findings and the
 * deterministic checks' ride on the review result, and a reply that breaks the schema is
 * repaired once or fails the job, as the verdict's is.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createReviewerHandler } from '../../../agents/reviewer/worker.js';
import { ReviewApproved, type ReviewRequest } from '../../../core/bus/messages.js';
import { ModelConfig } from '../../../core/config.js';
import { isStagegateError } from '../../../core/errors.js';
import { git } from '../../../core/git/git.js';
import { createLogger } from '../../../core/log.js';
import { createModelClient } from '../../../core/model/client.js';
import { startScriptedModelServer, type Answer, type ScriptedModelServer } from '../../../core/scripted-model/index.js';
import { createSmallRepo } from '../../helpers/small-repo.js';

const log = createLogger({ level: 'silent' });
const verdict = { decision: 'approve', summary: 'does the task', comments: [], risk: 'low' };
const injection = {
  severity: 'high', category: 'injection', file: 'src/db.js', line: 2,
  description: 'The name is concatenated into SQL.', suggestedFix: 'Pass it as a query parameter.',
};

let repo: string;
let workDir: string;
let commit: string;
let model: ScriptedModelServer | undefined;

beforeAll(async () => {
  repo = await createSmallRepo();
  workDir = await mkdtemp(join(tmpdir(), 'sg-review-work-'));
  const run = (args: string[]) => git(args, { cwd: repo });
  await run(['checkout', '--quiet', '-b', 'stagegate/t-sec']);
  await mkdir(join(repo, 'src'));
  await mkdir(join(repo, '.github/workflows'), { recursive: true });
  await writeFile(join(repo, 'src/db.js'), "export function find(db, name) {\n  return db.query(\"SELECT * FROM users WHERE name = '\" + name + \"'\");\n}\n");
  await writeFile(join(repo, '.github/workflows/ci.yml'), 'on: pull_request_target\npermissions:\n  contents: write\n');
  await run(['add', '--all']);
  await run(['commit', '--quiet', '-m', 'search by name']);
  commit = (await run(['rev-parse', 'HEAD'])).trim();
  await run(['checkout', '--quiet', 'main']);
});

afterEach(async () => {
  await model?.close();
  model = undefined;
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
  await rm(repo, { recursive: true, force: true });
});

const job = (): ReviewRequest => ({
  type: 'review.request', taskId: 't-sec', msgId: 't-sec:review:1', sentAt: '2025-03-01T10:00:00.000Z', attempt: 1,
  task: { repo, title: 'Search users by name', body: 'Add find(db, name).', base: 'main', submittedBy: 'alice' },
  plan: { summary: 'add find()', steps: [{ title: 'write it', detail: '' }], filesToTouch: ['src/db.js'], risks: [], acceptanceChecks: [] },
  branch: 'stagegate/t-sec', commit, round: 1, summary: 'added find()',
});

async function review(...securityAnswers: Answer[]) {
  model = await startScriptedModelServer({ script: { answers: { reviewer: [{ json: verdict }, ...securityAnswers] } } });
  const client = createModelClient(ModelConfig.parse({ apiKey: 'sk-test', baseUrl: model.url, maxRetries: 0 }), log);
  const handle = createReviewerHandler({
    model: client,
    workDir,
    commandTimeoutMs: 60_000,
    sandbox: () => Promise.reject(new Error('the repository has no tests to run')),
  });
  const progress: string[] = [];
  const outcome = handle(job(), { log, progress: async (message) => void progress.push(message) });
  return { outcome, progress, requests: () => model?.requests ?? [] };
}

const formatName = (body: Record<string, unknown>) => (body.text as { format?: { name?: string } } | undefined)?.format?.name;

describe('the reviewer job: security review', () => {
  it("asks the model a second time with the security brief, and publishes its findings with the checks' on the review result", async () => {
    const { outcome, progress, requests } = await review({ json: { summary: 'SQL injection in find()', findings: [injection] } });
    const result = await outcome;
    expect(result.type).toBe('review.approved');
    expect(ReviewApproved.safeParse({ ...result, taskId: 't-sec', msgId: 'm', sentAt: '2025-03-01T10:00:00.000Z', jobId: 't-sec:review:1' }).success).toBe(true);
    if (result.type !== 'review.approved') return;
    expect(result.security?.summary).toBe('SQL injection in find()');
    expect(result.security?.findings.map(({ severity, category, file, line, source }) => ({ severity, category, file, line, source }))).toEqual([
      { severity: 'high', category: 'injection', file: 'src/db.js', line: 2, source: 'model' },
      { severity: 'medium', category: 'ci-workflow', file: '.github/workflows/ci.yml', line: null, source: 'check' },
      { severity: 'high', category: 'permissions', file: '.github/workflows/ci.yml', line: 1, source: 'check' },
    ]);
    // The verdict is the other call's, untouched by the findings.
    expect(result.verdict).toEqual(verdict);
    expect(result.usage.calls).toBe(2);
    expect(progress).toContain('security review: checks on the change, then the model with the security brief');

    const [first, second] = requests();
    expect(requests()).toHaveLength(2);
    expect([first?.role, second?.role]).toEqual(['reviewer', 'reviewer']);
    expect(formatName(first?.body ?? {})).toBe('verdict');
    expect(formatName(second?.body ?? {})).toBe('security_review');
    expect(second?.body.instructions).toMatch(/^You are the security reviewer of Stagegate/);
    const input = JSON.stringify(second?.body.input);
    expect(input).toContain('SELECT * FROM users');
    expect(input).toContain('BEGIN UNTRUSTED TASK TITLE');
    // The security review does not see the other review's test results.
    expect(input).not.toContain('# Tests');
  });

  it('repairs a security reply that breaks the schema once, as the verdict is repaired', async () => {
    const broken = { summary: 'bad', findings: [{ ...injection, severity: 'severe' }] };
    const { outcome, requests } = await review({ json: broken }, { json: { summary: 'fine after all', findings: [] } });
    const result = await outcome;
    expect(result.type === 'review.approved' ? result.security : undefined).toEqual({
      summary: 'fine after all',
      findings: [
        expect.objectContaining({ category: 'ci-workflow', source: 'check' }),
        expect.objectContaining({ category: 'permissions', source: 'check' }),
      ],
    });
    expect(requests()).toHaveLength(3);
    expect(JSON.stringify(requests()[2]?.body.input)).toContain('findings[0].severity');
  });

  it('fails the job naming the security review when the repaired reply still breaks the schema, with every call counted', async () => {
    const broken = { json: { summary: 'bad', findings: [{ ...injection, line: 'two' }] } };
    const { outcome, requests } = await review(broken, broken);
    const err = await outcome.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isStagegateError(err, 'MODEL_OUTPUT_INVALID')).toBe(true);
    if (!isStagegateError(err)) return;
    expect(err.message).toMatch(/^security review: reviewer reply for task t-sec: .*findings\[0\]\.line/);
    expect(err.details?.usage).toMatchObject({ calls: 3 });
    expect(requests()).toHaveLength(3);
  });
});
