import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { git } from '../../../core/git/git.js';
import { parseAddedLines } from '../../../core/git/added-lines.js';
import { describeFinding, scanCommits, scanDiff, SecretFinding } from '../../../core/security/secret-scan.js';
import { AWS_ACCESS_KEY_ID, GITHUB_TOKEN, ORDINARY_CODE, PRIVATE_KEY_PEM } from '../../helpers/fake-secrets.js';

let repo: string;

beforeEach(async () => {
  repo = await mkdtemp(join(tmpdir(), 'sg-secret-scan-'));
  await git(['init', '--quiet', '--initial-branch=main'], { cwd: repo });
  await commitFiles({ 'README.md': '# app\n' });
});

afterEach(async () => {
  await rm(repo, { recursive: true, force: true });
});

async function commitFiles(files: Record<string, string>): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(repo, path)), { recursive: true });
    await writeFile(join(repo, path), content);
  }
  await git(['add', '--all'], { cwd: repo });
  await git(['commit', '--quiet', '-m', 'change'], { cwd: repo });
  return (await git(['rev-parse', 'HEAD'], { cwd: repo })).trim();
}

const everyValue = [AWS_ACCESS_KEY_ID, GITHUB_TOKEN, ...PRIVATE_KEY_PEM.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))];

describe('secret scan', () => {
  it('reports a hard-coded AWS key, GitHub token and private key by file, line and rule, never by value', async () => {
    const base = (await git(['rev-parse', 'HEAD'], { cwd: repo })).trim();
    const head = await commitFiles({
      'src/aws.ts': `// clients\nexport const accessKeyId = '${AWS_ACCESS_KEY_ID}';\n`,
      'src/github.ts': `import { Octokit } from '@octokit/rest';\n\n\nexport const octokit = new Octokit({ auth: '${GITHUB_TOKEN}' });\n`,
      'deploy/id_rsa': PRIVATE_KEY_PEM,
    });

    const findings = await scanDiff(repo, base, head);

    expect(findings.map(describeFinding)).toEqual(['deploy/id_rsa:1 (privatekey/PrivateKey)', 'src/aws.ts:2 (aws/AWSAccessKeyID)', 'src/github.ts:4 (github/GITHUB_TOKEN)'].sort());
    expect(findings.every((f) => SecretFinding.safeParse(f).success)).toBe(true);
    expect(findings.find((f) => f.file === 'src/github.ts')?.message).toBe('ghp_…(40 chars)');
    const text = JSON.stringify(findings);
    for (const value of everyValue) expect(text).not.toContain(value);
  });

  it('raises nothing on ordinary code that only names secrets (process.env.TOKEN, apiKey fields, URLs, hashes)', async () => {
    const base = (await git(['rev-parse', 'HEAD'], { cwd: repo })).trim();
    const head = await commitFiles({ 'src/config.ts': ORDINARY_CODE, 'test/config.test.ts': ORDINARY_CODE });

    expect(await scanDiff(repo, base, head)).toEqual([]);
  });

  it('scans only what the change adds: a secret already in the file before does not count', async () => {
    const base = await commitFiles({ 'src/legacy.ts': `export const token = '${GITHUB_TOKEN}';\n` });
    const head = await commitFiles({ 'src/legacy.ts': `export const token = '${GITHUB_TOKEN}';\nexport const retries = 3;\n` });

    expect(await scanDiff(repo, base, head)).toEqual([]);
  });

  it('is not switched off by a secretlint-disable comment in the change', async () => {
    const base = (await git(['rev-parse', 'HEAD'], { cwd: repo })).trim();
    const head = await commitFiles({ 'src/a.ts': `// secretlint-disable\nexport const token = '${GITHUB_TOKEN}';\n// secretlint-enable\n` });

    expect((await scanDiff(repo, base, head)).map(describeFinding)).toEqual(['src/a.ts:2 (github/GITHUB_TOKEN)']);
  });

  it('reads a file marked binary in .gitattributes as text, so the mark cannot hide a key', async () => {
    const base = await commitFiles({ '.gitattributes': '*.ts -diff\n' });
    const head = await commitFiles({ 'src/a.ts': `export const token = '${GITHUB_TOKEN}';\n` });

    expect((await scanDiff(repo, base, head)).map(describeFinding)).toEqual(['src/a.ts:1 (github/GITHUB_TOKEN)']);
  });

  it('finds a key added in one commit and removed in the next, commit by commit', async () => {
    const added = await commitFiles({ 'src/a.ts': `export const token = '${GITHUB_TOKEN}';\n` });
    const removed = await commitFiles({ 'src/a.ts': 'export const token = process.env.TOKEN;\n' });

    expect(await scanDiff(repo, `${added}^`, removed)).toEqual([]);
    expect((await scanCommits(repo, [added, removed])).map(describeFinding)).toEqual(['src/a.ts:1 (github/GITHUB_TOKEN)']);
  });

  it('scans a root commit whole', async () => {
    const root = (await git(['rev-list', '--max-parents=0', 'HEAD'], { cwd: repo })).trim();
    await git(['checkout', '--quiet', '--orphan', 'other'], { cwd: repo });
    const orphan = await commitFiles({ 'key.pem': PRIVATE_KEY_PEM });

    expect(await scanCommits(repo, [root])).toEqual([]);
    expect((await scanCommits(repo, [orphan])).map(describeFinding)).toEqual(['key.pem:1 (privatekey/PrivateKey)']);
  });
});

describe('added lines of a diff', () => {
  it('numbers added lines in the new file, and does not take an added line that reads like a header for one', () => {
    const diff = [
      'diff --git a/src/a.ts b/src/a.ts',
      '--- a/src/a.ts',
      '+++ b/src/a.ts',
      '@@ -3 +3,2 @@',
      '-old',
      '+++ not a header',
      '+@@ -1 +1 @@ nor this',
      '@@ -10,0 +12 @@',
      '+later',
      '\\ No newline at end of file',
      'diff --git "a/caf\\303\\251 \\"x\\".txt" "b/caf\\303\\251 \\"x\\".txt"',
      'new file mode 100644',
      '--- /dev/null',
      '+++ "b/caf\\303\\251 \\"x\\".txt"',
      '@@ -0,0 +1 @@',
      '+hello',
      'diff --git a/gone.ts b/gone.ts',
      'deleted file mode 100644',
      '--- a/gone.ts',
      '+++ /dev/null',
      '@@ -1 +0,0 @@',
      '-bye',
    ].join('\n');

    expect(parseAddedLines(diff)).toEqual([
      {
        path: 'src/a.ts',
        lines: [
          { line: 3, text: '++ not a header' },
          { line: 4, text: '@@ -1 +1 @@ nor this' },
          { line: 12, text: 'later' },
        ],
      },
      { path: 'café "x".txt', lines: [{ line: 1, text: 'hello' }] },
    ]);
  });
});
