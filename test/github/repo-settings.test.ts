/**
 * `.github/stagegate.yml` through `stagegate serve`: read from the repository's default branch
 * (and the organisation's `<owner>/.github`) through the fake GitHub when an issue is labelled;
 * a valid file's label, gates, commands and limits reach the task; an invalid one gets one
 * comment naming the file, the field and what was expected, and no task starts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TaskRecord } from '../../core/task-record.js';
import { BOT, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { issueLabeled } from '../helpers/github-webhooks.js';
import { waitFor } from '../helpers/wait-for.js';
import { statusMarker } from '../../orchestrator/github/status-comment.js';

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

const SETTINGS = '.github/stagegate.yml';
const CONTENTS = 'GET /repos/{owner}/{repo}/contents/{path}';

async function repoWith(owner: string, repo: string, files: Record<string, string>): Promise<void> {
  await h.github.addRepo({ owner, repo, files: { 'README.md': `# ${repo}\n`, ...files } });
  h.github.setPermission(owner, repo, WRITER, 'write');
}

async function label(owner: string, repo: string, name: string, issueNumber?: number): Promise<number> {
  const number = issueNumber ?? h.github.addIssue(owner, repo, { title: 'Add a health endpoint', user: WRITER }).number;
  const res = await h.send('issues', issueLabeled({ owner, repo, number, label: name, sender: WRITER, title: 'Add a health endpoint' }));
  expect(res.status).toBe(200);
  return number;
}

async function tasksOf(owner: string, repo: string, issueNumber: number): Promise<TaskRecord[]> {
  return (await h.client.list()).filter((r) => r.context.spec.source?.owner === owner && r.context.spec.source.repo === repo && r.context.spec.source.issueNumber === issueNumber);
}

const taskOf = (owner: string, repo: string, issueNumber: number) =>
  waitFor(`the task of ${owner}/${repo}#${issueNumber}`, async () => (await tasksOf(owner, repo, issueNumber))[0]);

const commentsOn = (owner: string, repo: string, issueNumber: number) => (h.github.state.repo(owner, repo)?.comments ?? []).filter((c) => c.issueNumber === issueNumber);

describe('repository settings in .github/stagegate.yml', () => {
  it('starts a task on the label the file names, with its gates, commands and limits, read from the default branch only', async () => {
    await repoWith('acme', 'conf-valid', {
      [SETTINGS]: [
        'label: ai-task',
        'gates:',
        '  plan:',
        '    approvers: ["github-permission:maintain"]',
        '    required: 2',
        'commands:',
        '  test: npm run test:unit',
        '  lint: npm run lint -- --max-warnings 0',
        'update:',
        '  strategy: rebase',
        'ci:',
        '  onRedBase: proceed',
        'limits:',
        '  maxReviewRounds: 1',
        '  maxReviewerRounds: 1',
        '  coder:',
        '    maxTurns: 25',
        '    maxCostUsd: 3',
        '',
      ].join('\n'),
    });
    // The task's branch (or any other) saying otherwise changes nothing.
    await h.github.commitFiles('acme', 'conf-valid', { [SETTINGS]: 'label: stagegate\ncommands:\n  test: exit 0\n' }, { branch: 'stagegate/1-add-a-health-endpoint' });

    const other = await label('acme', 'conf-valid', 'stagegate');
    const number = await label('acme', 'conf-valid', 'ai-task');

    const task = await taskOf('acme', 'conf-valid', number);
    expect(await tasksOf('acme', 'conf-valid', other)).toEqual([]);
    expect(task.context.spec).toMatchObject({ testCommand: 'npm run test:unit', lintCommand: 'npm run lint -- --max-warnings 0', coderCaps: { maxTurns: 25, maxCostUsd: 3 } });
    expect(task.context.spec.buildCommand).toBeUndefined();
    expect(task.context.policies.plan).toMatchObject({ approvers: ['github-permission:maintain'], required: 2 });
    expect(task.context.policies.review).toMatchObject({ approvers: ['github-permission:write'], required: 1 });
    expect(task.context.maxReviewRounds).toBe(1);
    expect(task.context.maxReviewerRounds).toBe(1);
    expect(task.context.spec.updateStrategy).toBe('rebase');
    // This serve does not watch CI: a file cannot make it.
    expect(task.context.ciPolicy).toBeNull();
    const reads = h.github.requestsTo(CONTENTS, (r) => r.params.repo === 'conf-valid');
    expect(reads.map((r) => [r.params.path, r.query.ref])).toEqual([
      [SETTINGS, 'main'],
      [SETTINGS, 'main'],
    ]);
    // No word about the settings: at most the task's own status comment, posted as it starts.
    expect(commentsOn('acme', 'conf-valid', number).filter((c) => !c.body.startsWith(statusMarker(task.context.taskId)))).toEqual([]);
  });

  it('comments once naming the file, each field and what was expected, and starts no task until the file is fixed', async () => {
    await repoWith('acme', 'conf-invalid', { [SETTINGS]: 'gates:\n  plan:\n    required: two\ncommands:\n  tests: npm test\n' });

    const number = await label('acme', 'conf-invalid', 'stagegate');
    await label('acme', 'conf-invalid', 'bug', number);

    const comments = commentsOn('acme', 'conf-invalid', number);
    expect(comments).toHaveLength(1);
    expect(comments[0]?.user).toBe(BOT);
    expect(comments[0]?.body).toBe(
      [
        `@${WRITER} Stagegate did not start a task: the Stagegate settings of acme/conf-invalid are not valid.`,
        "`.github/stagegate.yml on main`:\n- 'gates.plan.required' Invalid input: expected number, received string\n- 'commands' Unrecognized key: \"tests\"",
        'Fix the file on the default branch, then add the `stagegate` label again. Nothing changed.',
      ].join('\n\n'),
    );
    expect(await tasksOf('acme', 'conf-invalid', number)).toEqual([]);

    await h.github.commitFiles('acme', 'conf-invalid', { [SETTINGS]: 'gates:\n  plan:\n    required: 2\n' });
    await label('acme', 'conf-invalid', 'stagegate', number);
    expect((await taskOf('acme', 'conf-invalid', number)).context.policies.plan.required).toBe(2);
    expect(commentsOn('acme', 'conf-invalid', number).filter((c) => c.body.includes('are not valid'))).toHaveLength(1);
  });

  it('reports a file that is not YAML with its line, under the label the file meant', async () => {
    await repoWith('acme', 'conf-broken', { [SETTINGS]: 'label: go\ncommands:\n  test: [npm test\n' });

    const ignored = await label('acme', 'conf-broken', 'stagegate');
    const number = await label('acme', 'conf-broken', 'go');

    expect(commentsOn('acme', 'conf-broken', ignored)).toEqual([]);
    const body = commentsOn('acme', 'conf-broken', number)[0]?.body ?? '';
    expect(body).toContain('`.github/stagegate.yml on main`:\n- Flow sequence in block collection must be sufficiently indented and end with a ] at line 4, column 1');
    expect(body).toContain('add the `go` label again');
    expect(await tasksOf('acme', 'conf-broken', number)).toEqual([]);
  });

  it("inherits the organisation's defaults from <owner>/.github, the repository's file winning field by field", async () => {
    await repoWith('globex', '.github', {
      [SETTINGS]: 'label: agents\ncommands:\n  lint: make lint\n  test: make test\ngates:\n  deploy:\n    approvers: ["github-team:globex/release"]\nlimits:\n  coder:\n    maxTurns: 30\n',
    });
    await repoWith('globex', 'web', { [SETTINGS]: 'commands:\n  test: make check\nlimits:\n  maxReviewRounds: 9\n  coder:\n    maxTokens: 100000\n' });
    await repoWith('globex', 'plain', {});

    const web = await taskOf('globex', 'web', await label('globex', 'web', 'agents'));
    const plain = await taskOf('globex', 'plain', await label('globex', 'plain', 'agents'));

    expect(web.context.spec).toMatchObject({ lintCommand: 'make lint', testCommand: 'make check', coderCaps: { maxTurns: 30, maxTokens: 100000 } });
    expect(web.context.policies.deploy.approvers).toEqual(['github-team:globex/release']);
    // A limit only ever lowers serve's own (2 review rounds).
    expect(web.context.maxReviewRounds).toBe(2);
    expect(plain.context.spec).toMatchObject({ lintCommand: 'make lint', testCommand: 'make test', coderCaps: { maxTurns: 30 } });
    expect(h.github.requestsTo(CONTENTS, (r) => r.params.owner === 'globex' && r.params.repo === '.github').every((r) => r.query.ref === undefined)).toBe(true);
  });

  it('names the organisation file when that is the invalid one', async () => {
    await repoWith('initech', '.github', { [SETTINGS]: 'gates:\n  plan:\n    approvers: []\n' });
    await repoWith('initech', 'api', {});

    const number = await label('initech', 'api', 'stagegate');

    expect(commentsOn('initech', 'api', number)[0]?.body).toContain("`.github/stagegate.yml in initech/.github`:\n- 'gates.plan.approvers' expected at least one approver");
    expect(await tasksOf('initech', 'api', number)).toEqual([]);
  });
});
