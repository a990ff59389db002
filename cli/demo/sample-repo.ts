/**
 * The demo's sample project: a tiny Node library whose test already asks for a function that
 * does not exist yet. The repository accepts pushes to its checked-out branch, so the deployed
 * change lands in its working tree, where the demo runs the tests once more.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { git } from '../../core/git/git.js';

const FILES: Record<string, string> = {
  'package.json': `${JSON.stringify({ name: 'textkit', version: '1.0.0', type: 'module', scripts: { test: 'node --test' } }, null, 2)}\n`,
  'README.md': '# textkit\n\nSmall text helpers: `capitalize(text)`; `slugify(title)` is still missing.\n',
  'src/textkit.js': `export function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
`,
  'test/textkit.test.js': `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capitalize, slugify } from '../src/textkit.js';

test('capitalize upper-cases the first letter', () => {
  assert.equal(capitalize('hello'), 'Hello');
});

test('slugify turns a title into a URL slug', () => {
  assert.equal(slugify('Hello World'), 'hello-world');
  assert.equal(slugify('  Stagegate: plan, build & ship!  '), 'stagegate-plan-build-ship');
});
`,
};

export const SAMPLE_TASK = {
  title: 'Add slugify(title) to textkit',
  body: 'The test in test/textkit.test.js expects `slugify` in src/textkit.js: lower-case, words joined by single dashes, no leading or trailing dash.',
};

export async function createSampleRepo(dir: string): Promise<string> {
  for (const [path, content] of Object.entries(FILES)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  await git(['init', '--quiet', '--initial-branch=main'], { cwd: dir });
  await git(['config', 'receive.denyCurrentBranch', 'updateInstead'], { cwd: dir });
  await git(['add', '--all'], { cwd: dir });
  await git(['commit', '--quiet', '-m', 'textkit: capitalize'], { cwd: dir });
  return dir;
}
