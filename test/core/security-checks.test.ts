/**
 * The deterministic security checks, on real git repositories: each change is a branch off main,
 * read as the reviewer reads it (numstat for the paths, the zero-context diff for the lines,
 * `git show` for manifests before and after), and the findings each check reports, or must not.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git } from '../../core/git/git.js';
import { parseDiffLines } from '../../core/git/diff-lines.js';
import { NUMSTAT_ARGS, parseNumstat } from '../../core/git/numstat.js';
import { runChangeChecks } from '../../core/security/change-checks.js';
import { protectedChangesIn } from '../../core/security/protected-paths.js';
import { readChange } from '../../core/security/read-change.js';
import { AWS_ACCESS_KEY_ID, ORDINARY_CODE } from '../helpers/fake-secrets.js';

let dir: string;
const run = (args: string[]) => git(args, { cwd: dir });

const BASE_FILES: Record<string, string> = {
  'src/app.ts': 'export const app = 1;\n',
  'package.json': JSON.stringify({ name: 'app', version: '1.0.0', scripts: { build: 'tsc' }, dependencies: { zod: '^4.0.0' } }, null, 2),
  '.github/workflows/ci.yml': 'name: ci\non: push\npermissions:\n  contents: read\njobs:\n  test:\n    runs-on: ubuntu-latest\n',
};

async function write(files: Record<string, string>) {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

/** A branch off main with these files written and these removed, read as the reviewer reads it. */
async function changeOf(branch: string, files: Record<string, string>, removed: string[] = []) {
  await run(['checkout', '--quiet', '-b', branch, 'main']);
  await write(files);
  for (const path of removed) await run(['rm', '--quiet', path]);
  await run(['add', '--all']);
  await run(['commit', '--quiet', '-m', branch]);
  await run(['checkout', '--quiet', 'main']);
  const { changedFiles } = parseNumstat(await run([...NUMSTAT_ARGS, `main...${branch}`]));
  return readChange(run, { base: 'main', commit: branch }, changedFiles);
}

/** The findings the checks report on a branch like `changeOf`'s, without their texts. */
async function findingsFor(branch: string, files: Record<string, string>, removed: string[] = []) {
  const findings = await runChangeChecks(await changeOf(branch, files, removed));
  return findings.map(({ severity, category, file, line, source }) => ({ severity, category, file, line, source }));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sg-checks-'));
  await run(['init', '--quiet', '--initial-branch=main']);
  await write(BASE_FILES);
  await run(['add', '--all']);
  await run(['commit', '--quiet', '-m', 'base']);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('security checks on the change', () => {
  it('reports nothing for a change to ordinary source files', async () => {
    expect(await findingsFor('plain', { 'src/app.ts': 'export const app = 2;\n', 'src/new.ts': 'export {};\n' })).toEqual([]);
  });

  it('reports a workflow change, and a permission it grants at its line', async () => {
    const ci = BASE_FILES['.github/workflows/ci.yml']?.replace('contents: read', 'contents: write\n  id-token: write');
    expect(await findingsFor('workflow', { '.github/workflows/ci.yml': ci ?? '' })).toEqual([
      { severity: 'medium', category: 'ci-workflow', file: '.github/workflows/ci.yml', line: null, source: 'check' },
      { severity: 'high', category: 'permissions', file: '.github/workflows/ci.yml', line: 4, source: 'check' },
    ]);
  });

  it('reports a workflow that only runs a new step as a workflow change, not a permission change', async () => {
    const ci = `${BASE_FILES['.github/workflows/ci.yml'] ?? ''}    steps:\n      - run: npm test\n`;
    expect((await findingsFor('workflow-step', { '.github/workflows/ci.yml': ci })).map((f) => f.category)).toEqual(['ci-workflow']);
  });

  it('reports a permission removed with a deleted workflow, without a line', async () => {
    expect(await findingsFor('workflow-gone', {}, ['.github/workflows/ci.yml'])).toEqual([
      { severity: 'medium', category: 'ci-workflow', file: '.github/workflows/ci.yml', line: null, source: 'check' },
      { severity: 'high', category: 'permissions', file: '.github/workflows/ci.yml', line: null, source: 'check' },
    ]);
  });

  it('reports code owners and branch protection as permission changes', async () => {
    const found = await findingsFor('owners', { '.github/CODEOWNERS': '* @acme/anyone\n', '.github/settings.yml': 'branches: []\n' });
    expect(found).toEqual([
      { severity: 'high', category: 'permissions', file: '.github/CODEOWNERS', line: null, source: 'check' },
      { severity: 'high', category: 'permissions', file: '.github/settings.yml', line: null, source: 'check' },
    ]);
  });

  it('reports package.json only when its dependencies change, and lockfiles and other manifests always', async () => {
    const pkg = JSON.parse(BASE_FILES['package.json'] ?? '{}') as Record<string, unknown>;
    const scriptsOnly = { ...pkg, version: '1.1.0', scripts: { build: 'tsc -p .' } };
    expect(await findingsFor('scripts-only', { 'package.json': JSON.stringify(scriptsOnly, null, 2) })).toEqual([]);

    const withDeps = { ...pkg, dependencies: { zod: '^4.0.0', 'left-pad': '1.3.0' }, devDependencies: { vitest: '^4.0.0' } };
    const found = await findingsFor('deps', {
      'package.json': JSON.stringify(withDeps, null, 2),
      'package-lock.json': '{}\n',
      'tools/requirements-dev.txt': 'requests==2.32.0\n',
      'go.sum': 'example.com/m v1.0.0 h1:abc=\n',
    });
    expect(found.map((f) => `${f.severity} ${f.category} ${f.file}`).sort()).toEqual([
      'medium dependencies go.sum',
      'medium dependencies package-lock.json',
      'medium dependencies package.json',
      'medium dependencies tools/requirements-dev.txt',
    ]);
  });

  it('names the dependency fields that changed', async () => {
    await run(['checkout', '--quiet', '-b', 'deps-named', 'main']);
    await write({ 'package.json': JSON.stringify({ ...JSON.parse(BASE_FILES['package.json'] ?? '{}'), overrides: { zod: '4.0.1' } }) });
    await run(['commit', '--quiet', '--all', '-m', 'override']);
    await run(['checkout', '--quiet', 'main']);
    const change = await readChange(run, { base: 'main', commit: 'deps-named' }, ['package.json']);
    const [finding] = await runChangeChecks(change);
    expect(finding?.description).toMatch(/^Changes overrides:/);
  });

  it('reports a secret the change adds as critical at its line, naming the rule but never the value', async () => {
    const code = `export const app = 1;\nconst aws = '${AWS_ACCESS_KEY_ID}';\n`;
    const findings = await runChangeChecks(await changeOf('secret', { 'src/app.ts': code }));
    expect(findings.map(({ severity, category, file, line }) => ({ severity, category, file, line }))).toEqual([
      { severity: 'critical', category: 'secrets', file: 'src/app.ts', line: 2 },
    ]);
    expect(findings[0]?.description).toContain('aws/');
    expect(JSON.stringify(findings)).not.toContain(AWS_ACCESS_KEY_ID);
    expect(await findingsFor('no-secret', { 'src/app.ts': `export const app = 1;\n${ORDINARY_CODE}` })).toEqual([]);
  });

  it("reports deploy configuration and Stagegate's configuration", async () => {
    const found = await findingsFor('config', { Dockerfile: 'FROM node:20\n', 'fly.toml': 'app = "x"\n', '.github/stagegate.yml': 'gates: {}\n' });
    expect(found.map((f) => `${f.severity} ${f.category} ${f.file}`).sort()).toEqual([
      'high stagegate-config .github/stagegate.yml',
      'medium deploy-config Dockerfile',
      'medium deploy-config fly.toml',
    ]);
  });
});

describe('protected paths', () => {
  it('names CI workflows, deploy configuration (built in and configured) and Stagegate configuration, and nothing else', () => {
    const files = ['.github/workflows/release.yaml', 'k8s/app.yaml', 'infra/main.tf', 'ops/run.sh', 'stagegate.json', 'src/deploy.ts', 'docs/Dockerfile.md'];
    expect(protectedChangesIn(files, ['ops/**'])).toEqual([
      { file: '.github/workflows/release.yaml', kind: 'ci-workflow' },
      { file: 'k8s/app.yaml', kind: 'deploy-config' },
      { file: 'infra/main.tf', kind: 'deploy-config' },
      { file: 'ops/run.sh', kind: 'deploy-config' },
      { file: 'stagegate.json', kind: 'stagegate-config' },
    ]);
    expect(protectedChangesIn(['ops/run.sh'])).toEqual([]);
  });
});

describe('parseDiffLines', () => {
  it('reads added and removed lines with their numbers, and paths git quotes', () => {
    const diff = [
      'diff --git "a/we\\tird \\"name\\".txt" "b/we\\tird \\"name\\".txt"',
      'index 1..2 100644',
      '--- "a/we\\tird \\"name\\".txt"',
      '+++ "b/we\\tird \\"name\\".txt"',
      '@@ -2 +2,2 @@',
      '-old',
      '+new',
      '+-- not a header',
      'diff --git a/caf\\303\\251.md b/caf\\303\\251.md',
      'new file mode 100644',
      '--- /dev/null',
      '+++ "b/caf\\303\\251.md"',
      '@@ -0,0 +1 @@',
      '+hello',
    ].join('\n');
    expect(parseDiffLines(diff)).toEqual([
      { path: 'we\tird "name".txt', status: 'modified', added: [{ line: 2, text: 'new' }, { line: 3, text: '-- not a header' }], removed: [{ line: 2, text: 'old' }] },
      { path: 'café.md', status: 'added', added: [{ line: 1, text: 'hello' }], removed: [] },
    ]);
  });
});
