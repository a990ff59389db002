import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StagegateError } from '../../core/errors.js';
import { createLogger, type Logger } from '../../core/log.js';
import { detectBwrap } from '../../core/sandbox/detect-bwrap.js';
import { createSandbox, type Sandbox } from '../../core/sandbox/sandbox.js';
import { waitFor } from '../helpers/wait-for.js';

const run = promisify(execFile);
const bwrap = await detectBwrap();

/** Variables a worker holds that no command may see, each with a value to look for in the output too. */
const SECRETS: Record<string, string> = {
  OPENAI_API_KEY: 'sk-test-openai-1234567890',
  GITHUB_TOKEN: 'ghp_testgithubtoken123',
  SLACK_BOT_TOKEN: 'xoxb-test-slack-token',
  SLACK_SIGNING_SECRET: 'slack-signing-secret-value',
  NATS_CREDS: '/etc/nats/user.creds',
  NATS_TOKEN: 'nats-token-value',
  NATS_URL: 'nats://user:password@127.0.0.1:4222',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-value',
  NPM_TOKEN: 'npm_secret_token',
  STAGEGATE_EXTRA: 'not-allow-listed',
};

/** What may be set inside: the allow-list, plus what a shell sets for itself. */
const ALLOWED_NAMES = new Set(['PATH', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'TZ', 'HOME', 'TMPDIR', 'TERM', 'CI', 'NO_COLOR', 'PAGER', 'GIT_PAGER', 'GIT_TERMINAL_PROMPT', 'GIT_CONFIG_NOSYSTEM', 'npm_config_cache', 'npm_config_update_notifier']);

const NET_PROBE = "require('net').connect(PORT,'127.0.0.1').on('error',()=>process.exit(7)).on('connect',()=>process.exit(0))";

interface Fixture {
  worktree: string;
  /** Outside /tmp (which the sandbox replaces anyway), so hiding it is what keeps it unread. */
  outside: string;
  fakeHome: string;
  workerEnv: NodeJS.ProcessEnv;
  logLines: string[];
  log: Logger;
}

async function createFixture(): Promise<Fixture> {
  const worktree = await mkdtemp(path.join(tmpdir(), 'sg-sandbox-wt-'));
  await run('git', ['init', '--quiet', worktree]);
  const outside = await mkdtemp(path.join('/var/tmp', 'sg-sandbox-out-'));
  const fakeHome = path.join(outside, 'home');
  await mkdir(path.join(fakeHome, '.ssh'), { recursive: true });
  await writeFile(path.join(fakeHome, '.ssh', 'id_ed25519'), 'PRIVATE KEY\n');
  await writeFile(path.join(fakeHome, '.npmrc'), '//registry.npmjs.org/:_authToken=npm_secret\n');
  await writeFile(path.join(fakeHome, '.git-credentials'), 'https://user:token@github.com\n');
  await writeFile(path.join(outside, 'visible.txt'), 'visible\n');
  await writeFile(path.join(outside, 'config.json'), '{"model":{"apiKey":"sk-from-config-file"}}\n');
  await mkdir(path.join(outside, 'other-task'));
  await writeFile(path.join(outside, 'other-task', 'code.ts'), 'other task\n');
  const logLines: string[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } });
  const workerEnv = { ...SECRETS, PATH: process.env.PATH, LANG: 'C.UTF-8', HOME: fakeHome };
  return { worktree, outside, fakeHome, workerEnv, logLines, log };
}

async function removeFixture(fixture: Fixture): Promise<void> {
  await rm(fixture.worktree, { recursive: true, force: true });
  await rm(fixture.outside, { recursive: true, force: true });
}

function envNames(output: string): string[] {
  return output
    .split('\n')
    .filter((line) => line.includes('='))
    .map((line) => line.slice(0, line.indexOf('=')));
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** A listener outside the sandbox, so a refused connection inside proves the network is cut. */
async function listen(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port };
}

describe('detectBwrap', () => {
  it('reports a binary that does not exist as not usable, saying so', async () => {
    const status = await detectBwrap('/nonexistent/bwrap');
    expect(status).toEqual({ usable: false, path: '/nonexistent/bwrap', reason: '/nonexistent/bwrap was not found' });
  });

  it('reports a binary that exists but fails the probe as not usable', async () => {
    const status = await detectBwrap('/bin/false');
    expect(status.usable).toBe(false);
    expect(status.usable ? '' : status.reason).toContain('/bin/false');
  });
});

describe.skipIf(!bwrap.usable)(`the bwrap sandbox${bwrap.usable ? '' : ` (SKIPPED: bwrap is not usable here: ${bwrap.reason})`}`, () => {
  let fixture: Fixture;
  let sandbox: Sandbox;
  const inWorktree = (timeoutMs = 20_000) => ({ writableDir: fixture.worktree, cwd: fixture.worktree, timeoutMs });

  beforeAll(async () => {
    fixture = await createFixture();
    sandbox = await createSandbox({
      allowUnsandboxed: false,
      log: fixture.log,
      env: fixture.workerEnv,
      hiddenPaths: [path.join(fixture.outside, 'config.json'), path.join(fixture.outside, 'other-task')],
    });
  });
  afterAll(() => removeFixture(fixture));

  it('is a bwrap sandbox and says so at creation', () => {
    expect(sandbox.kind).toBe('bwrap');
    expect(fixture.logLines.some((line) => line.includes('model-written commands run inside bubblewrap'))).toBe(true);
  });

  it('runs an argv without a shell and a string through sh -c, in the working directory', async () => {
    await mkdir(path.join(fixture.worktree, 'sub'), { recursive: true });
    const argv = await sandbox.run(['echo', '$HOME', 'a b'], inWorktree());
    expect(argv).toMatchObject({ command: "echo '$HOME' 'a b'", exitCode: 0, timedOut: false, output: '$HOME a b\n' });
    const string = await sandbox.run('pwd && echo $HOME; exit 3', { ...inWorktree(), cwd: path.join(fixture.worktree, 'sub') });
    expect(string).toMatchObject({ command: 'pwd && echo $HOME; exit 3', exitCode: 3, output: `${path.join(fixture.worktree, 'sub')}\n/tmp\n` });
  });

  it('denies the network: a connection to a listener outside is refused inside', async () => {
    const { server, port } = await listen();
    try {
      const inside = await sandbox.run(['node', '-e', NET_PROBE.replace('PORT', String(port))], inWorktree());
      expect(inside.exitCode).toBe(7);
      // The same probe outside connects, so the refusal above is the sandbox's doing.
      const outside = await run('node', ['-e', NET_PROBE.replace('PORT', String(port))]).then(() => 0, () => 7);
      expect(outside).toBe(0);
    } finally {
      server.close();
    }
  });

  it('cannot reach local daemons through their sockets under /run', async () => {
    const result = await sandbox.run('ls -A /run | wc -l', inWorktree());
    expect(result.output.trim()).toBe('0');
  });

  it('writes inside the worktree and nowhere else', async () => {
    const marker = `sg-${randomUUID()}`;
    const inside = await sandbox.run(`echo ok > ${marker}.txt`, inWorktree());
    expect(inside.exitCode).toBe(0);
    expect(await readFile(path.join(fixture.worktree, `${marker}.txt`), 'utf8')).toBe('ok\n');
    for (const target of [`/etc/${marker}`, `/usr/${marker}`, path.join(fixture.outside, marker), path.join(process.cwd(), marker)]) {
      const result = await sandbox.run(['sh', '-c', 'echo x > "$1"', 'sh', target], inWorktree());
      expect(result.exitCode, target).not.toBe(0);
      // Read-only, or not there at all: a path under /tmp is hidden by the sandbox's private /tmp.
      expect(result.output).toMatch(/Read-only file system|Directory nonexistent|No such file or directory/);
      expect(await exists(target), target).toBe(false);
    }
  });

  it("keeps the worktree's .git read-only, so nothing written there runs in the worker's git later", async () => {
    const result = await sandbox.run('echo "#!/bin/sh" > .git/hooks/pre-commit', inWorktree());
    expect(result.exitCode).not.toBe(0);
    expect(await exists(path.join(fixture.worktree, '.git/hooks/pre-commit'))).toBe(false);
    expect((await sandbox.run(['git', 'rev-parse', '--git-dir'], inWorktree())).output.trim()).toBe('.git');
  });

  it('gives each command a private /tmp', async () => {
    const marker = `sg-${randomUUID()}`;
    await writeFile(path.join(tmpdir(), marker), 'host');
    try {
      const result = await sandbox.run(`test ! -e /tmp/${marker} && echo inside > /tmp/${marker}-new && cat /tmp/${marker}-new`, inWorktree());
      expect(result).toMatchObject({ exitCode: 0, output: 'inside\n' });
      expect(await exists(path.join(tmpdir(), `${marker}-new`))).toBe(false);
      expect((await sandbox.run(`test -e /tmp/${marker}-new`, inWorktree())).exitCode).toBe(1);
    } finally {
      await rm(path.join(tmpdir(), marker), { force: true });
    }
  });

  it('shows no secret of the worker in the environment, only allow-listed variables', async () => {
    const result = await sandbox.run(['env'], inWorktree());
    expect(result.exitCode).toBe(0);
    for (const [name, value] of Object.entries(SECRETS)) {
      expect(result.output).not.toContain(name);
      expect(result.output).not.toContain(value);
    }
    // bwrap sets PWD for --chdir.
    expect(envNames(result.output).filter((name) => !ALLOWED_NAMES.has(name) && name !== 'PWD')).toEqual([]);
    expect(result.output).toContain('HOME=/tmp\n');
    expect(result.output).toContain('CI=true\n');
  });

  it("hides the worker's home directory: keys and credentials there cannot be read", async () => {
    for (const file of ['.ssh/id_ed25519', '.npmrc', '.git-credentials']) {
      const result = await sandbox.run(['cat', path.join(fixture.fakeHome, file)], inWorktree());
      expect(result.exitCode, file).not.toBe(0);
      expect(result.output).not.toMatch(/PRIVATE KEY|npm_secret|token@/);
    }
    expect((await sandbox.run(['ls', '-A', fixture.fakeHome], inWorktree())).output).toBe('');
    // The real home of this process too: all that shows of it are the toolchain directories on PATH.
    const toolchainEntries = (fixture.workerEnv.PATH ?? '')
      .split(':')
      .filter((dir) => dir.startsWith(`${homedir()}/`))
      .map((dir) => dir.slice(homedir().length + 1).split('/')[0]);
    const listed = (await sandbox.run(['ls', '-A', homedir()], inWorktree())).output.split('\n').filter((entry) => entry !== '');
    expect(listed.filter((entry) => !toolchainEntries.includes(entry))).toEqual([]);
    // A file beside the hidden home stays readable: the read-only root is still there.
    expect((await sandbox.run(['cat', path.join(fixture.outside, 'visible.txt')], inWorktree())).output).toBe('visible\n');
  });

  it('hides the configured paths: a file cannot be opened, a directory is empty', async () => {
    const file = await sandbox.run(['cat', path.join(fixture.outside, 'config.json')], inWorktree());
    expect(file.exitCode).not.toBe(0);
    expect(file.output).not.toContain('sk-from-config-file');
    expect((await sandbox.run(['ls', '-A', path.join(fixture.outside, 'other-task')], inWorktree())).output).toBe('');
  });

  it('kills the command and every process it started at the timeout', async () => {
    const marker = `31.${Date.now() % 100_000}${Math.floor(Math.random() * 1000)}`;
    const started = Date.now();
    const result = await sandbox.run(`sleep ${marker} & sleep ${marker} & echo started; wait`, inWorktree(500));
    expect(result.timedOut).toBe(true);
    expect(result.output).toBe('started\n');
    expect(Date.now() - started).toBeLessThan(10_000);
    await waitFor('no sleep of the timed-out command left', async () => ((await pgrep(`sleep ${marker}`)) ? undefined : true), 5_000);
  });

  it('ends what a command left running in the background when the command exits', async () => {
    const marker = `32.${Date.now() % 100_000}${Math.floor(Math.random() * 1000)}`;
    const result = await sandbox.run(`(sleep ${marker} > /dev/null 2>&1 &) ; echo done`, inWorktree());
    expect(result).toMatchObject({ exitCode: 0, output: 'done\n' });
    await waitFor('the background sleep to be gone', async () => ((await pgrep(`sleep ${marker}`)) ? undefined : true), 5_000);
  });

  it('keeps the head and tail of long output within outputLimit', async () => {
    const result = await sandbox.run(['node', '-e', "for (let i = 0; i < 2000; i++) console.log('line ' + i)"], { ...inWorktree(), outputLimit: 300 });
    expect(result.output.startsWith('line 0\n')).toBe(true);
    expect(result.output.endsWith('line 1999\n')).toBe(true);
    expect(result.output).toMatch(/… \[\d+ characters elided\] …/);
    expect(result.output.length).toBeLessThan(400);
  });

  it('refuses a working directory outside the writable one', async () => {
    await expect(sandbox.run(['true'], { writableDir: fixture.worktree, cwd: fixture.outside, timeoutMs: 5_000 })).rejects.toMatchObject({
      code: 'PATH_ESCAPE',
    });
  });
});

describe('without bwrap', () => {
  let fixture: Fixture;

  beforeAll(async () => {
    fixture = await createFixture();
  });
  afterAll(() => removeFixture(fixture));

  it('refuses to create a sandbox unless unsandboxed execution is allowed', async () => {
    const creating = createSandbox({ allowUnsandboxed: false, log: fixture.log, env: fixture.workerEnv, bwrapPath: '/nonexistent/bwrap' });
    await expect(creating).rejects.toBeInstanceOf(StagegateError);
    await expect(creating).rejects.toMatchObject({
      code: 'TOOL_MISSING',
      message: expect.stringMatching(/bwrap \(Debian package bubblewrap\) is not available.*STAGEGATE_ALLOW_UNSANDBOXED=true/),
    });
  });

  it('gives, when allowed, a none sandbox that warns at creation and still scrubs the environment', async () => {
    const sandbox = await createSandbox({ allowUnsandboxed: true, log: fixture.log, env: fixture.workerEnv, bwrapPath: '/nonexistent/bwrap' });
    expect(sandbox.kind).toBe('none');
    const warning = fixture.logLines.map((line) => JSON.parse(line) as { level: number; msg: string }).find((line) => line.msg.includes('WITHOUT isolation'));
    expect(warning?.level).toBe(40);
    const result = await sandbox.run('env', { writableDir: fixture.worktree, cwd: fixture.worktree, timeoutMs: 10_000 });
    expect(result.exitCode).toBe(0);
    for (const [name, value] of Object.entries(SECRETS)) {
      expect(result.output).not.toContain(name);
      expect(result.output).not.toContain(value);
    }
    expect(envNames(result.output).filter((name) => !ALLOWED_NAMES.has(name) && !['PWD', 'SHLVL', '_', 'OLDPWD'].includes(name))).toEqual([]);
  });

  it('still refuses a working directory outside the writable one', async () => {
    const sandbox = await createSandbox({ allowUnsandboxed: true, log: fixture.log, env: fixture.workerEnv, bwrapPath: '/nonexistent/bwrap' });
    await expect(sandbox.run('true', { writableDir: fixture.worktree, cwd: fixture.outside, timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'PATH_ESCAPE' });
  });
});

/** Whether any process's command line contains `text`. */
async function pgrep(text: string): Promise<boolean> {
  return run('pgrep', ['-f', text]).then(
    () => true,
    () => false,
  );
}
