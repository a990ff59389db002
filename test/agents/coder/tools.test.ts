import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findApprovalPattern, validateApprovalPatterns } from '../../../agents/coder/harness/tools/approval.js';
import { executeToolCall, toolDefinitions } from '../../../agents/coder/harness/tools/registry.js';
import { TimedScanner, type Match } from '../../../agents/coder/harness/tools/search.js';
import type { PlanStep, ToolContext, ToolOutcome } from '../../../agents/coder/harness/tool-types.js';
import { createLogger } from '../../../core/log.js';
import { createSandbox, type Sandbox } from '../../../core/sandbox/sandbox.js';

const run = promisify(execFile);
const log = createLogger({ level: 'silent' });

let worktree: string;
let outside: string;
let sandbox: Sandbox;
const tempDirs: string[] = [];

/** A git worktree: tracked, untracked, ignored and deleted files, and symbolic links that lead out of it. */
beforeAll(async () => {
  worktree = await mkdtemp(path.join(tmpdir(), 'sg-tools-'));
  outside = await mkdtemp(path.join(tmpdir(), 'sg-tools-outside-'));
  tempDirs.push(worktree, outside);
  await writeFile(path.join(outside, 'secret.txt'), 'TOP SECRET\n');
  const files: Record<string, string> = {
    'README.md': '# Demo\n\nA small project.\n',
    '.gitignore': 'ignored.log\ndist/\n',
    'src/math.ts': 'export function add(a: number, b: number) {\n  return a + b;\n}\n',
    'src/util/strings.ts': "export const greeting = 'Hello';\nexport const shout = (s: string) => s.toUpperCase();\n",
    'long.txt': Array.from({ length: 1000 }, (_, i) => `line ${i + 1}`).join('\n') + '\n',
    'wide.txt': `${'x'.repeat(5_000)}NEEDLE${'y'.repeat(5_000)}\n`,
    'gone.txt': 'deleted after the commit\n',
  };
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(worktree, file)), { recursive: true });
    await writeFile(path.join(worktree, file), content);
  }
  await writeFile(path.join(worktree, 'image.bin'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01, 0x02]));
  await git('init', '--quiet', '--initial-branch=main');
  await git('add', '--all');
  await git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '--quiet', '-m', 'initial');
  await rm(path.join(worktree, 'gone.txt'));
  await writeFile(path.join(worktree, 'untracked.ts'), "export const fresh = 'Hello again';\n");
  await writeFile(path.join(worktree, 'ignored.log'), 'Hello from a log\n');
  await mkdir(path.join(worktree, 'dist'));
  await writeFile(path.join(worktree, 'dist/bundle.js'), 'Hello bundle\n');
  await symlink(path.join(outside, 'secret.txt'), path.join(worktree, 'secret-link'));
  await symlink(outside, path.join(worktree, 'outside-dir'));
  sandbox = await createSandbox({ allowUnsandboxed: true, log, env: process.env });
});

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function git(...args: string[]): Promise<string> {
  return (await run('git', args, { cwd: worktree })).stdout;
}

function context(overrides: Partial<ToolContext> = {}): ToolContext & { plans: PlanStep[][] } {
  const plans: PlanStep[][] = [];
  return {
    worktree,
    sandbox,
    log,
    shellTimeoutMs: 20_000,
    outputLimit: 2_000,
    requireApproval: ['git push', 'npm install', '/\\bcurl\\b/'],
    approvedCommands: [],
    onPlanUpdate: async (steps) => void plans.push(steps),
    plans,
    ...overrides,
  };
}

function call(name: string, args: unknown, ctx: ToolContext = context()): Promise<ToolOutcome> {
  return executeToolCall(name, JSON.stringify(args), ctx);
}

function expectError(outcome: ToolOutcome, ...fragments: string[]): void {
  expect(outcome.isError, outcome.output).toBe(true);
  expect(outcome.output.startsWith('error: ')).toBe(true);
  for (const fragment of fragments) expect(outcome.output).toContain(fragment);
}

/** Every `properties` object in a JSON schema, wherever it is. */
function objectSchemas(node: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(node)) return node.flatMap(objectSchemas);
  if (typeof node !== 'object' || node === null) return [];
  const record = node as Record<string, unknown>;
  const own = record.type === 'object' ? [record] : [];
  return [...own, ...Object.values(record).flatMap(objectSchemas)];
}

describe('tool definitions', () => {
  it('lists the seven tools in a fixed order, built once', () => {
    expect(toolDefinitions().map((tool) => tool.name)).toEqual(['read_file', 'list_files', 'search', 'apply_patch', 'shell', 'update_plan', 'finish']);
    expect(toolDefinitions()).toBe(toolDefinitions());
  });

  it('gives strict schemas: every property required, no extra properties, no keyword strict mode refuses', () => {
    for (const tool of toolDefinitions()) {
      expect(tool).toMatchObject({ type: 'function', strict: true });
      expect(tool.description.length).toBeGreaterThan(20);
      expect(tool.parameters).not.toHaveProperty('$schema');
      const objects = objectSchemas(tool.parameters);
      expect(objects.length).toBeGreaterThan(0);
      for (const object of objects) {
        expect(object.additionalProperties, tool.name).toBe(false);
        expect(object.required, tool.name).toEqual(Object.keys(object.properties as object));
      }
      expect(JSON.stringify(tool.parameters)).not.toMatch(/minLength|maxLength|9007199254740991|"default"/);
    }
  });

  it('makes optional arguments nullable', () => {
    const readFile = toolDefinitions().find((tool) => tool.name === 'read_file');
    expect(readFile?.parameters).toMatchObject({
      properties: { startLine: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'null' }] } },
    });
  });
});

describe('executeToolCall', () => {
  it('answers an unknown tool with an error naming the tools there are', async () => {
    expectError(await call('delete_everything', {}), "there is no tool 'delete_everything'", 'read_file, list_files');
  });

  it('answers arguments that are not JSON with an error', async () => {
    expectError(await executeToolCall('read_file', '{"path": ', context()), 'arguments of read_file are not valid JSON');
  });

  it('answers arguments that do not fit the schema with an error naming the field', async () => {
    expectError(await call('read_file', { path: 'README.md', startLine: 'one', endLine: null }), 'invalid arguments for read_file', "'startLine'");
    expectError(await call('read_file', { startLine: null, endLine: null }), "'path'");
  });
});

describe('read_file', () => {
  it('returns the lines numbered, with the range and the total', async () => {
    const outcome = await call('read_file', { path: 'src/math.ts', startLine: null, endLine: null });
    expect(outcome).toEqual({
      isError: false,
      output: 'src/math.ts: lines 1-3 of 3\n1\texport function add(a: number, b: number) {\n2\t  return a + b;\n3\t}',
    });
  });

  it('pages a long file and says how to read on', async () => {
    const first = await call('read_file', { path: 'long.txt', startLine: null, endLine: null });
    expect(first.output.split('\n')[0]).toBe('long.txt: lines 1-400 of 1000');
    expect(first.output).toContain('400\tline 400');
    expect(first.output).not.toContain('line 401');
    expect(first.output.split('\n').at(-1)).toBe('… lines 401-1000 not shown: call read_file with startLine 401 to read on');
    const last = await call('read_file', { path: 'long.txt', startLine: 801, endLine: null });
    expect(last.output.split('\n')[0]).toBe('long.txt: lines 801-1000 of 1000');
    expect(last.output.split('\n').at(-1)).toBe('1000\tline 1000');
  });

  it('shows the range asked for, and caps a longer one at a page', async () => {
    const range = await call('read_file', { path: 'long.txt', startLine: 10, endLine: 12 });
    expect(range.output).toBe('long.txt: lines 10-12 of 1000\n10\tline 10\n11\tline 11\n12\tline 12');
    const capped = await call('read_file', { path: 'long.txt', startLine: 1, endLine: 900 });
    expect(capped.output.split('\n').at(-1)).toBe('… lines 401-900 not shown: call read_file with startLine 401 to read on');
  });

  it('cuts very long lines', async () => {
    const outcome = await call('read_file', { path: 'wide.txt', startLine: null, endLine: null });
    expect(outcome.output).toContain('… [8006 more characters]');
  });

  it('answers bad ranges, directories, binary and missing files with errors', async () => {
    expectError(await call('read_file', { path: 'long.txt', startLine: 1001, endLine: null }), 'startLine 1001 is past the end', '1000 lines');
    expectError(await call('read_file', { path: 'long.txt', startLine: 5, endLine: 4 }), 'endLine 4 is before startLine 5');
    expectError(await call('read_file', { path: 'long.txt', startLine: 0, endLine: null }), "'startLine'");
    expectError(await call('read_file', { path: 'src', startLine: null, endLine: null }), "'src' is a directory", 'list_files');
    expectError(await call('read_file', { path: 'image.bin', startLine: null, endLine: null }), "'image.bin' is a binary file");
    expectError(await call('read_file', { path: 'nope.ts', startLine: null, endLine: null }), "'nope.ts' does not exist");
  });

  it('refuses paths that leave the worktree: .., absolute, and a symbolic link out', async () => {
    expectError(await call('read_file', { path: '../secret.txt', startLine: null, endLine: null }), 'climbs out');
    expectError(await call('read_file', { path: path.join(outside, 'secret.txt'), startLine: null, endLine: null }), 'absolute path outside the worktree');
    expectError(await call('read_file', { path: 'secret-link', startLine: null, endLine: null }), 'symbolic link');
    expectError(await call('read_file', { path: 'outside-dir/secret.txt', startLine: null, endLine: null }), 'symbolic link');
  });

  it('takes an absolute path inside the worktree as the relative path it names', async () => {
    const outcome = await call('read_file', { path: path.join(worktree, 'README.md'), startLine: 1, endLine: 1 });
    expect(outcome.output).toBe('README.md: lines 1-1 of 3\n1\t# Demo');
  });
});

describe('list_files', () => {
  it('lists tracked and untracked files, not ignored or deleted ones', async () => {
    const outcome = await call('list_files', { glob: null });
    const files = outcome.output.split('\n');
    expect(files).toEqual(expect.arrayContaining(['.gitignore', 'README.md', 'src/math.ts', 'src/util/strings.ts', 'untracked.ts', 'secret-link']));
    expect(files).not.toContain('ignored.log');
    expect(files).not.toContain('dist/bundle.js');
    expect(files).not.toContain('gone.txt');
    expect(files.at(-1)).toMatch(/^\d+ files$/);
  });

  it('filters by a glob: a path glob, a name glob in any directory, a directory', async () => {
    expect((await call('list_files', { glob: 'src/**/*.ts' })).output).toBe('src/math.ts\nsrc/util/strings.ts\n2 files');
    expect((await call('list_files', { glob: '*.ts' })).output).toBe('src/math.ts\nsrc/util/strings.ts\nuntracked.ts\n3 files');
    expect((await call('list_files', { glob: 'src/util' })).output).toBe('src/util/strings.ts\n1 file');
    expect((await call('list_files', { glob: '*.{md,log}' })).output).toBe('README.md\n1 file');
    expect((await call('list_files', { glob: '*.nothing' })).output).toBe("no files match '*.nothing'");
  });

  it('never lists what lies behind a symbolic link out of the worktree', async () => {
    // The link itself is listed (git lists it as a file); nothing behind it is.
    expect((await call('list_files', { glob: 'outside-dir/**' })).output).toBe('outside-dir\n1 file');
    expect((await call('list_files', { glob: 'outside-dir' })).output).toBe('outside-dir\n1 file');
  });

  it('refuses globs that leave the worktree', async () => {
    expectError(await call('list_files', { glob: '../**' }), "refused glob '../**'");
    expectError(await call('list_files', { glob: '/etc/*' }), "refused glob '/etc/*'");
    expectError(await call('list_files', { glob: 'src/../../x' }), 'refused glob');
  });

  it('answers a bad glob argument with an error naming the field', async () => {
    expectError(await call('list_files', { glob: 5 }), "'glob'");
    expectError(await call('list_files', {}), "'glob'");
  });

  it('caps a long listing and says how many more there are', async () => {
    await mkdir(path.join(worktree, 'many'));
    await Promise.all(Array.from({ length: 620 }, (_, i) => writeFile(path.join(worktree, 'many', `f${String(i).padStart(3, '0')}.txt`), `${i}\n`)));
    try {
      const lines = (await call('list_files', { glob: 'many' })).output.split('\n');
      expect(lines).toHaveLength(501);
      expect(lines[499]).toBe('many/f499.txt');
      expect(lines[500]).toBe('… and 120 more files (620 in all): narrow the glob to see them');
    } finally {
      await rm(path.join(worktree, 'many'), { recursive: true });
    }
  });
});

describe('search', () => {
  it('answers file:line: text for each matching line, in listed files only', async () => {
    const outcome = await call('search', { pattern: 'Hello', glob: null });
    expect(outcome.output).toBe(
      ["src/util/strings.ts:1: export const greeting = 'Hello';", "untracked.ts:1: export const fresh = 'Hello again';", '2 matches in 10 files (1 binary file skipped)'].join('\n'),
    );
  });

  it('filters by glob and takes (?i) for a case-insensitive match', async () => {
    expect((await call('search', { pattern: '(?i)hello', glob: 'src/**' })).output).toBe(
      "src/util/strings.ts:1: export const greeting = 'Hello';\n1 match in 2 files matching 'src/**'",
    );
    expect((await call('search', { pattern: 'hello', glob: 'src/**' })).output).toBe("no matches for /hello/ in 2 files matching 'src/**'");
  });

  it('shows a window around the match in a very long line', async () => {
    const outcome = await call('search', { pattern: 'NEEDLE', glob: 'wide.txt' });
    const line = outcome.output.split('\n')[0] ?? '';
    expect(line).toMatch(/^wide\.txt:1: …x+NEEDLEy+…$/);
    expect(line.length).toBeLessThan(320);
  });

  it('skips binary files and symbolic links, so nothing outside the worktree is read', async () => {
    expect((await call('search', { pattern: 'TOP SECRET', glob: null })).output).toMatch(/^no matches for \/TOP SECRET\/ in 10 files \(1 binary file skipped\)$/);
  });

  it('does not read a tracked file whose directory was replaced by a link out of the worktree', async () => {
    const tree = await mkdtemp(path.join(tmpdir(), 'sg-tools-swap-'));
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'sg-tools-elsewhere-'));
    tempDirs.push(tree, elsewhere);
    await mkdir(path.join(tree, 'conf'));
    await writeFile(path.join(tree, 'conf/settings.txt'), 'harmless\n');
    await run('git', ['init', '--quiet', '--initial-branch=main'], { cwd: tree });
    await run('git', ['add', '--all'], { cwd: tree });
    await run('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '--quiet', '-m', 'initial'], { cwd: tree });
    // git still lists conf/settings.txt as tracked once conf/ is a link to a directory holding a secret.
    await writeFile(path.join(elsewhere, 'settings.txt'), '_authToken=LEAKED\n');
    await rm(path.join(tree, 'conf'), { recursive: true });
    await symlink(elsewhere, path.join(tree, 'conf'));
    const outcome = await call('search', { pattern: 'LEAKED', glob: null }, context({ worktree: tree }));
    expect(outcome.output).not.toContain('_authToken');
    expect(outcome.output).toMatch(/^no matches for \/LEAKED\//);
  });

  it('stops at 200 matches and says so', async () => {
    const outcome = await call('search', { pattern: '^line', glob: 'long.txt' });
    const lines = outcome.output.split('\n');
    expect(lines).toHaveLength(201);
    expect(lines[199]).toBe('long.txt:200: line 200');
    expect(lines[200]).toBe('… stopped at 200 matches: narrow the pattern or the glob');
  });

  it('answers an invalid regular expression and bad arguments with errors', async () => {
    expectError(await call('search', { pattern: '(unclosed', glob: null }), 'invalid regular expression /(unclosed/');
    expectError(await call('search', { pattern: '', glob: null }), "'pattern'");
    expectError(await call('search', { pattern: 'x' }), "'glob'");
    expectError(await call('search', { pattern: 'x', glob: '../*' }), 'refused glob');
  });

  it('stops a catastrophically backtracking expression at its time limit instead of hanging', () => {
    const matches: Match[] = [];
    const scanner = new TimedScanner(/^(a+)+$/, matches, 200);
    const started = Date.now();
    expect(scanner.scan([{ file: 'evil.txt', text: `${'a'.repeat(40)}!` }])).toBe(false);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('apply_patch', () => {
  it('applies a patch and lists what it added, modified, deleted and moved', async () => {
    await writeFile(path.join(worktree, 'scratch-a.txt'), 'one\ntwo\n');
    await writeFile(path.join(worktree, 'scratch-b.txt'), 'bye\n');
    await writeFile(path.join(worktree, 'scratch-c.txt'), 'move me\n');
    const patch = [
      '*** Begin Patch',
      '*** Add File: scratch-new/added.txt',
      '+hello',
      '*** Update File: scratch-a.txt',
      '@@',
      ' one',
      '-two',
      '+three',
      '*** Delete File: scratch-b.txt',
      '*** Update File: scratch-c.txt',
      '*** Move to: scratch-new/moved.txt',
      '@@',
      '-move me',
      '+moved',
      '*** End Patch',
    ].join('\n');
    const outcome = await call('apply_patch', { patch });
    expect(outcome).toEqual({
      isError: false,
      output: 'patch applied:\nA scratch-new/added.txt\nM scratch-a.txt\nD scratch-b.txt\nR scratch-c.txt -> scratch-new/moved.txt',
    });
    expect(await readFile(path.join(worktree, 'scratch-a.txt'), 'utf8')).toBe('one\nthree\n');
    expect(await readFile(path.join(worktree, 'scratch-new/moved.txt'), 'utf8')).toBe('moved\n');
    await rm(path.join(worktree, 'scratch-new'), { recursive: true });
    await rm(path.join(worktree, 'scratch-a.txt'));
  });

  it('returns the hunk that failed and why, and changes nothing', async () => {
    const patch = ['*** Begin Patch', '*** Add File: should-not-exist.txt', '+x', '*** Update File: src/math.ts', '@@', '-  return a - b;', '+  return b;', '*** End Patch'].join('\n');
    const outcome = await call('apply_patch', { patch });
    expectError(outcome, 'the patch was not applied, nothing was changed', 'src/math.ts', 'return a - b;');
    await expect(stat(path.join(worktree, 'should-not-exist.txt'))).rejects.toThrow();
  });

  it('answers a patch that is not one, and bad arguments, with errors', async () => {
    expectError(await call('apply_patch', { patch: 'just some text' }), 'the patch was not applied');
    expectError(await call('apply_patch', { patch: 42 }), "'patch'");
    expectError(await call('apply_patch', {}), "'patch'");
  });

  it('refuses paths that leave the worktree: .., absolute, and a symbolic link out', async () => {
    const add = (file: string) => ['*** Begin Patch', `*** Add File: ${file}`, '+pwned', '*** End Patch'].join('\n');
    expectError(await call('apply_patch', { patch: add('../escaped.txt') }), 'climbs out');
    expectError(await call('apply_patch', { patch: add(path.join(outside, 'abs.txt')) }), 'absolute path');
    expectError(await call('apply_patch', { patch: add('secret-link') }), 'symbolic link');
    expectError(await call('apply_patch', { patch: add('outside-dir/new.txt') }), 'symbolic link');
    expect(await readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('TOP SECRET\n');
    await expect(stat(path.join(outside, 'new.txt'))).rejects.toThrow();
  });

  it("refuses to write the repository's .git, directly or through a link", async () => {
    const add = (file: string) => ['*** Begin Patch', `*** Add File: ${file}`, '+#!/bin/sh', '*** End Patch'].join('\n');
    expectError(await call('apply_patch', { patch: add('.git/hooks/pre-commit') }), '.git directory is not editable');
    await symlink('.git/hooks', path.join(worktree, 'hooks-link'));
    try {
      expectError(await call('apply_patch', { patch: add('hooks-link/pre-commit') }), '.git directory is not editable');
    } finally {
      await rm(path.join(worktree, 'hooks-link'));
    }
    await expect(stat(path.join(worktree, '.git/hooks/pre-commit'))).rejects.toThrow();
  });
});

describe('shell', () => {
  it('runs an argv without a shell and reports the exit code and output', async () => {
    const outcome = await call('shell', { command: ['node', '-e', 'console.log(1 + 1); process.exit(3)'], workdir: null, timeoutMs: null });
    expect(outcome).toEqual({ isError: false, output: 'exit code 3\n2\n' });
    expect((await call('shell', { command: ['echo', '$HOME', '&&', 'x'], workdir: null, timeoutMs: null })).output).toBe('exit code 0\n$HOME && x\n');
  });

  it('runs a string through sh -c, in the workdir asked for', async () => {
    const outcome = await call('shell', { command: 'pwd | sed "s|.*/||" && ls | wc -l', workdir: 'src/util', timeoutMs: null });
    expect(outcome.output).toBe('exit code 0\nutil\n1\n');
  });

  it('says when a command printed nothing', async () => {
    expect((await call('shell', { command: 'true', workdir: null, timeoutMs: null })).output).toBe('exit code 0\n(no output)');
  });

  it('reports a timeout, and never waits past the worker maximum', async () => {
    const outcome = await call('shell', { command: 'echo before; sleep 20', workdir: null, timeoutMs: 300 });
    expect(outcome.output).toBe('timed out after 300 ms: the command and every process it started were killed\nbefore\n');
    const capped = await call('shell', { command: 'sleep 20', workdir: null, timeoutMs: 600_000 }, context({ shellTimeoutMs: 300 }));
    expect(capped.output.split('\n')[0]).toBe('timed out after 300 ms: the command and every process it started were killed');
  });

  it('keeps the head and the tail of long output, the middle elided', async () => {
    const outcome = await call('shell', { command: 'seq 1 5000', workdir: null, timeoutMs: null }, context({ outputLimit: 300 }));
    expect(outcome.output.startsWith('exit code 0\n1\n2\n')).toBe(true);
    expect(outcome.output.endsWith('4999\n5000\n')).toBe(true);
    expect(outcome.output).toMatch(/… \[\d+ characters elided\] …/);
  });

  it('refuses a workdir outside the worktree: .., absolute, and a symbolic link out', async () => {
    expectError(await call('shell', { command: ['pwd'], workdir: '..', timeoutMs: null }), 'climbs out');
    expectError(await call('shell', { command: ['pwd'], workdir: outside, timeoutMs: null }), 'absolute path outside the worktree');
    expectError(await call('shell', { command: ['pwd'], workdir: 'outside-dir', timeoutMs: null }), 'symbolic link');
    expectError(await call('shell', { command: ['pwd'], workdir: 'README.md', timeoutMs: null }), "workdir 'README.md' is not a directory");
  });

  it('answers bad arguments with errors naming the field', async () => {
    expectError(await call('shell', { command: [], workdir: null, timeoutMs: null }), "'command'");
    expectError(await call('shell', { command: 'ls', workdir: null, timeoutMs: -5 }), "'timeoutMs'");
    expectError(await call('shell', { command: 'ls', workdir: null }), "'timeoutMs'");
  });

  it('does not run a command that needs approval, and asks the loop for it', async () => {
    const outcome = await call('shell', { command: 'touch ran-unapproved && git push origin main', workdir: null, timeoutMs: null });
    expect(outcome.isError).toBe(false);
    expect(outcome.output).toContain("needs a human's approval");
    expect(outcome.control).toEqual({ kind: 'needs-approval', command: 'touch ran-unapproved && git push origin main', pattern: 'git push' });
    await expect(stat(path.join(worktree, 'ran-unapproved'))).rejects.toThrow();
    const regex = await call('shell', { command: ['curl', 'https://example.com'], workdir: null, timeoutMs: null });
    expect(regex.control).toEqual({ kind: 'needs-approval', command: 'curl https://example.com', pattern: '/\\bcurl\\b/' });
  });

  it('runs a command once it is among the approved ones', async () => {
    const command = ['npm', 'install', '--help'];
    const ctx = context({ approvedCommands: ['npm install --help'] });
    const outcome = await call('shell', { command, workdir: null, timeoutMs: null }, ctx);
    expect(outcome.control).toBeUndefined();
    expect(outcome.output).toMatch(/^exit code \d+\n/);
  });
});

describe('requireApproval patterns', () => {
  const patterns = ['git push', 'npm install', '/\\b(curl|wget)\\b/i'];
  it.each([
    ['git push', 'git push'],
    ['git push origin main', 'git push'],
    ['cd app && git push --force', 'git push'],
    ["sh -c 'git push'", 'git push'],
    ['FOO=1 sudo /usr/bin/git push', 'git push'],
    ['npm test; npm install left-pad', 'npm install'],
    ['echo hi | CURL -s http://x', '/\\b(curl|wget)\\b/i'],
    ['git status', undefined],
    ['git pushx', undefined],
    ['echo git push', undefined],
    ['npm installer', undefined],
  ])('%s → %s', (command, expected) => {
    expect(findApprovalPattern(command, patterns, log)).toBe(expected);
  });

  it('asks for every command when a regex pattern does not compile, and validation names it', () => {
    expect(findApprovalPattern('ls', ['/(/'], log)).toBe('/(/');
    expect(() => validateApprovalPatterns(['git push', '/(/'])).toThrow(/requireApproval pattern \/\(\/ is not a valid regular expression/);
    expect(() => validateApprovalPatterns(['git push', '/curl/i'])).not.toThrow();
  });
});

describe('update_plan', () => {
  it('hands the steps to the loop and says the plan was updated', async () => {
    const ctx = context();
    const steps = [
      { step: 'read the code', status: 'completed' },
      { step: 'write the fix', status: 'in_progress' },
      { step: 'run the tests', status: 'pending' },
    ];
    expect(await call('update_plan', { steps }, ctx)).toEqual({ isError: false, output: 'plan updated' });
    expect(ctx.plans).toEqual([steps]);
  });

  it('answers bad steps with errors, and does not update the plan', async () => {
    const ctx = context();
    expectError(await call('update_plan', { steps: [{ step: 'x', status: 'done' }] }, ctx), "'steps[0].status'");
    expectError(await call('update_plan', { steps: [] }, ctx), "'steps'");
    expectError(
      await call('update_plan', { steps: [{ step: 'a', status: 'in_progress' }, { step: 'b', status: 'in_progress' }] }, ctx),
      'at most one step can be in_progress',
    );
    expect(ctx.plans).toEqual([]);
  });
});

describe('finish', () => {
  it('ends the work with the summary for the reviewer', async () => {
    expect(await call('finish', { summary: 'Added add(); tests pass.' })).toEqual({
      isError: false,
      output: 'finished',
      control: { kind: 'finish', summary: 'Added add(); tests pass.' },
    });
  });

  it('carries one answer per review comment to the job, by comment id', async () => {
    const answers = [
      { commentId: 41, status: 'addressed', reason: '' },
      { commentId: 42, status: 'declined', reason: 'Out of the task.' },
    ];

    expect(await call('finish', { summary: 'Renamed.', answers })).toEqual({ isError: false, output: 'finished', control: { kind: 'finish', summary: 'Renamed.', answers } });
    expect((await call('finish', { summary: 'Renamed.', answers: null })).control).toEqual({ kind: 'finish', summary: 'Renamed.' });
  });

  it('answers an answer with an unknown status or no comment id with an error', async () => {
    expectError(await call('finish', { summary: 'x', answers: [{ commentId: 1, status: 'ignored', reason: '' }] }), "'answers[0].status'");
    expectError(await call('finish', { summary: 'x', answers: [{ status: 'addressed', reason: '' }] }), "'answers[0].commentId'");
  });

  it('answers an empty or missing summary with an error', async () => {
    expectError(await call('finish', { summary: '' }), "'summary'");
    expectError(await call('finish', {}), "'summary'");
  });
});
