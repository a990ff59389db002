/**
 * Where model-written commands run. With bubblewrap: the whole file system read-only, only the
 * task's worktree and a private /tmp writable, the worktree's `.git` read-only (so nothing the
 * model writes there — hooks, config — runs later in the worker's own git commands), no network
 * (or, when the task names hosts, only those, through the egress proxy: egress-proxy.ts), its own PID namespace (every process the command started dies with it), the worker's home
 * directory, /run (local daemons' sockets) and any configured paths hidden, and an environment
 * built from an allow-list, so no API key or token the worker holds can reach the command.
 *
 * Without bubblewrap the worker refuses to create a sandbox unless unsandboxed execution is
 * explicitly allowed; the `none` sandbox then still scrubs the environment, and says at creation
 * that it isolates nothing else.
 */
import { isInside } from '../fs/is-inside.js';
import { copyFile, mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StagegateError, errorMessage } from '../errors.js';
import { formatArgv, runCommand, type CommandResult } from '../exec/run-command.js';
import type { Logger } from '../log.js';
import { ISOLATION_FLAGS, detectBwrap } from './detect-bwrap.js';
import { startEgressProxy } from './egress-proxy.js';
import type { EgressRule } from './egress-rules.js';

export interface SandboxRunOptions {
  /** The one directory the command may write: the task's worktree. */
  writableDir: string;
  /** Where the command starts; must be `writableDir` or inside it. */
  cwd: string;
  timeoutMs: number;
  /** Characters of output returned: a third from the head, the rest from the tail, the middle elided. */
  outputLimit?: number;
  /** Hosts the command may reach through the egress proxy (absent or empty: no network at all). */
  egress?: SandboxEgress;
}

export interface SandboxEgress {
  rules: readonly EgressRule[];
  /** Where each allowed and refused connection is logged: the task's logger. */
  log: Logger;
}

export interface Sandbox {
  readonly kind: 'bwrap' | 'none';
  /** A string runs through `sh -c`, an argv directly. The result's `command` is the command as given. */
  run(command: string | readonly string[], options: SandboxRunOptions): Promise<CommandResult>;
}

export interface CreateSandboxOptions {
  /** Without a usable bwrap: true gives the `none` sandbox, false refuses (TOOL_MISSING). */
  allowUnsandboxed: boolean;
  log: Logger;
  /** The worker's environment; only PATH and the locale variables are taken from it. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** More paths to hide from commands (a config file holding a key, other tasks' work directories). */
  hiddenPaths?: readonly string[];
  /** The bubblewrap binary; default `bwrap` on PATH. */
  bwrapPath?: string;
}

/** Taken from the worker's environment when set: none of them carries a secret. */
const PASSED_THROUGH = ['PATH', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'TZ'] as const;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The whole environment a sandboxed command gets; everything else the worker holds stays out. */
export function sandboxEnv(workerEnv: NodeJS.ProcessEnv, home: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PASSED_THROUGH) {
    const value = workerEnv[name];
    if (value !== undefined) env[name] = value;
  }
  return {
    PATH: DEFAULT_PATH,
    ...env,
    HOME: home,
    TMPDIR: home,
    TERM: 'dumb',
    CI: 'true',
    NO_COLOR: '1',
    PAGER: 'cat',
    GIT_PAGER: 'cat',
    GIT_TERMINAL_PROMPT: '0',
    // The machine's /etc/gitconfig may name a credential helper; the worker's own config is hidden with its home.
    GIT_CONFIG_NOSYSTEM: '1',
    npm_config_cache: path.join(home, '.npm'),
    npm_config_update_notifier: 'false',
  };
}

export async function createSandbox(options: CreateSandboxOptions): Promise<Sandbox> {
  const workerEnv = options.env ?? process.env;
  const status = await detectBwrap(options.bwrapPath);
  if (status.usable) {
    const hidden = await hiddenMounts(workerEnv, options.hiddenPaths ?? []);
    options.log.info({ sandbox: 'bwrap', bwrap: status.path, hidden: hidden.paths }, 'model-written commands run inside bubblewrap');
    return bwrapSandbox(status.path, sandboxEnv(workerEnv, '/tmp'), hidden.args, options.log);
  }
  if (!options.allowUnsandboxed) {
    throw new StagegateError(
      'TOOL_MISSING',
      `bwrap (Debian package bubblewrap) is not available (${status.reason}): the coder refuses to run model-written commands without a sandbox; install it or set STAGEGATE_ALLOW_UNSANDBOXED=true`,
      { details: { bwrap: status.path, reason: status.reason } },
    );
  }
  options.log.warn(
    { sandbox: 'none', reason: status.reason },
    'bwrap is not usable and unsandboxed execution is allowed: model-written commands run WITHOUT isolation (only their environment is scrubbed)',
  );
  return noneSandbox(sandboxEnv(workerEnv, tmpdir()), options.log);
}

function bwrapSandbox(bwrap: string, env: Record<string, string>, hiddenArgs: readonly string[], log: Logger): Sandbox {
  const setenv = Object.entries(env).flatMap(([name, value]) => ['--setenv', name, value]);
  return {
    kind: 'bwrap',
    async run(command, options) {
      const { writableDir, cwd } = await confine(options);
      const gitDir = path.join(writableDir, '.git');
      const protectGit = await isDirectory(gitDir);
      const argv = typeof command === 'string' ? ['sh', '-c', command] : [...command];
      const egress = options.egress !== undefined && options.egress.rules.length > 0 ? await openEgress(options.egress) : undefined;
      try {
        const bwrapArgv = [
          bwrap,
          ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp'],
          hiddenArgs,
          ['--bind', writableDir, writableDir],
          protectGit ? ['--ro-bind', gitDir, gitDir] : [],
          egress?.bindArgs ?? [],
          ISOLATION_FLAGS,
          ['--clearenv', ...setenv, ...(egress?.setenvArgs ?? []), '--chdir', cwd, '--'],
          egress === undefined ? argv : egress.wrap(argv),
        ].flat();
        return finish(log, command, await runCommand(bwrapArgv, { cwd, timeoutMs: options.timeoutMs, env, ...keep(options.outputLimit) }));
      } finally {
        await egress?.close();
      }
    },
  };
}

/** Where the egress proxy's socket and the bridge appear inside the sandbox, and the bridge's port there. */
const EGRESS_DIR_INSIDE = '/tmp/.stagegate-egress';
const EGRESS_PORT_INSIDE = 3128;
const BRIDGE_SOURCE = fileURLToPath(new URL('./egress-bridge.mjs', import.meta.url));

/**
 * The egress proxy for one command: its socket and the bridge in a fresh directory bound
 * read-only into the sandbox, the proxy variables every common tool reads, and the command
 * started behind the bridge.
 */
async function openEgress(egress: SandboxEgress): Promise<{
  bindArgs: string[];
  setenvArgs: string[];
  wrap(argv: readonly string[]): string[];
  close(): Promise<void>;
}> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sg-egress-'));
  await copyFile(BRIDGE_SOURCE, path.join(dir, 'bridge.mjs'));
  const proxy = await startEgressProxy({ socketPath: path.join(dir, 'proxy.sock'), rules: egress.rules, log: egress.log }).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  const proxyUrl = `http://127.0.0.1:${EGRESS_PORT_INSIDE}`;
  const proxyEnv = ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'npm_config_proxy', 'npm_config_https_proxy'];
  return {
    bindArgs: ['--ro-bind', dir, EGRESS_DIR_INSIDE],
    setenvArgs: [...proxyEnv.flatMap((name) => ['--setenv', name, proxyUrl]), '--unsetenv', 'NO_PROXY', '--unsetenv', 'no_proxy'],
    wrap: (argv) => [process.execPath, `${EGRESS_DIR_INSIDE}/bridge.mjs`, `${EGRESS_DIR_INSIDE}/proxy.sock`, String(EGRESS_PORT_INSIDE), ...argv],
    async close() {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The same sandbox, every command of which may reach the hosts the rules name (one task's). */
export function withEgress(sandbox: Sandbox, rules: readonly EgressRule[] | undefined, log: Logger): Sandbox {
  if (rules === undefined || rules.length === 0) return sandbox;
  if (sandbox.kind === 'none') {
    log.warn({ egress: rules }, 'the unsandboxed runner does not isolate the network: commands reach any host, not only the allowed ones');
    return sandbox;
  }
  return { kind: sandbox.kind, run: (command, options) => sandbox.run(command, { ...options, egress: { rules, log } }) };
}

function noneSandbox(env: Record<string, string>, log: Logger): Sandbox {
  return {
    kind: 'none',
    async run(command, options) {
      const { cwd } = await confine(options);
      return finish(log, command, await runCommand(command, { cwd, timeoutMs: options.timeoutMs, env, ...keep(options.outputLimit) }));
    },
  };
}

function finish(log: Logger, command: string | readonly string[], result: CommandResult): CommandResult {
  const shown = typeof command === 'string' ? command : formatArgv(command);
  log.debug({ command: shown, exitCode: result.exitCode, timedOut: result.timedOut }, 'sandboxed command finished');
  return { ...result, command: shown };
}

function keep(outputLimit: number | undefined): { keepHead?: number; keepTail?: number } {
  if (outputLimit === undefined) return {};
  const keepHead = Math.floor(outputLimit / 3);
  return { keepHead, keepTail: outputLimit - keepHead };
}

/** Both directories as physical paths, the working directory inside the writable one. */
async function confine(options: SandboxRunOptions): Promise<{ writableDir: string; cwd: string }> {
  const writableDir = await existingDirectory(options.writableDir, 'writable directory');
  const cwd = await existingDirectory(options.cwd, 'working directory');
  if (!isInside(writableDir, cwd)) {
    throw new StagegateError('PATH_ESCAPE', `refused to run a command in '${options.cwd}': it is outside the worktree ${writableDir}`, {
      details: { cwd: options.cwd, writableDir },
    });
  }
  return { writableDir, cwd };
}

async function existingDirectory(dir: string, what: string): Promise<string> {
  try {
    const real = await realpath(dir);
    if ((await stat(real)).isDirectory()) return real;
  } catch (err) {
    throw new StagegateError('COMMAND_FAILED', `cannot run a command: the ${what} '${dir}' does not exist (${errorMessage(err)})`, {
      cause: err,
    });
  }
  throw new StagegateError('COMMAND_FAILED', `cannot run a command: the ${what} '${dir}' is not a directory`);
}

async function isDirectory(candidate: string): Promise<boolean> {
  return stat(candidate).then(
    (stats) => stats.isDirectory(),
    () => false,
  );
}

/**
 * bwrap arguments that hide the worker's home directory, /run and the configured paths: a
 * directory under an empty tmpfs, a file under /dev/null (bound without device access, so
 * opening it fails). Programs the worker's PATH finds
 * inside a hidden directory (a toolchain under the home directory, such as nvm's node) stay
 * visible read-only, as does the installation of the node running the worker.
 */
async function hiddenMounts(workerEnv: NodeJS.ProcessEnv, extra: readonly string[]): Promise<{ args: string[]; paths: string[] }> {
  const candidates = [homedir(), workerEnv.HOME, '/run', ...extra].filter((p): p is string => p !== undefined && path.isAbsolute(p));
  const args: string[] = [];
  const hiddenDirs: string[] = [];
  const paths: string[] = [];
  for (const candidate of new Set(candidates)) {
    const real = await realpath(candidate).catch(() => undefined);
    if (real === undefined || real === '/' || paths.includes(real)) continue;
    const stats = await stat(real);
    if (stats.isDirectory()) {
      args.push('--tmpfs', real);
      hiddenDirs.push(real);
    } else {
      args.push('--ro-bind', '/dev/null', real);
    }
    paths.push(real);
  }
  const toolchains = [...(workerEnv.PATH ?? '').split(':'), path.dirname(path.dirname(process.execPath))];
  for (const dir of new Set(toolchains)) {
    if (!path.isAbsolute(dir)) continue;
    const real = await realpath(dir).catch(() => undefined);
    if (real === undefined || !(await isDirectory(real))) continue;
    // Inside a hidden directory, and not itself one nor above one: re-exposing it reveals nothing hidden.
    const inside = hiddenDirs.some((hiddenDir) => real.startsWith(`${hiddenDir}/`));
    const holdsHidden = paths.some((hiddenPath) => hiddenPath === real || hiddenPath.startsWith(`${real}/`));
    if (inside && !holdsHidden) args.push('--ro-bind', real, real);
  }
  return { args, paths };
}
