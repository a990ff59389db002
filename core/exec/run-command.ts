/**
 * Runs a repository's command (tests, deploy) and keeps what a person or a model needs of
 * its output: the head and the tail, with the middle elided past a limit.
 *
 * A string runs through `sh -c`; an argv array runs its program directly, with no shell.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  command: string;
  exitCode: number | null;
  timedOut: boolean;
  /** stdout and stderr interleaved, head and tail kept. */
  output: string;
}

export interface RunCommandOptions {
  cwd: string;
  timeoutMs: number;
  /** The child's whole environment (nothing else is inherited); process.env when absent. */
  env?: NodeJS.ProcessEnv;
  /** Characters kept from the start and from the end. */
  keepHead?: number;
  keepTail?: number;
}

export function runCommand(command: string | readonly string[], options: RunCommandOptions): Promise<CommandResult> {
  const keepHead = options.keepHead ?? 4_000;
  const keepTail = options.keepTail ?? 8_000;
  const [program, ...args] = typeof command === 'string' ? ['sh', '-c', command] : command;
  const display = typeof command === 'string' ? command : formatArgv(command);
  return new Promise((resolve, reject) => {
    if (program === undefined) {
      reject(new TypeError('runCommand: the argv is empty'));
      return;
    }
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let head = '';
    let tail = '';
    let total = 0;
    const take = (text: string) => {
      total += text.length;
      if (head.length < keepHead) {
        const room = keepHead - head.length;
        head += text.slice(0, room);
        tail = (tail + text.slice(room)).slice(-keepTail);
      } else {
        tail = (tail + text).slice(-keepTail);
      }
    };
    // Decoded as a stream, so a character split between two chunks stays whole.
    child.stdout.setEncoding('utf8').on('data', take);
    child.stderr.setEncoding('utf8').on('data', take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const elided = total - head.length - tail.length;
      const output = elided > 0 ? `${head}\n… [${elided} characters elided] …\n${tail}` : head + tail;
      resolve({ command: display, exitCode: code, timedOut, output });
    });
  });
}

/** The command runs in its own process group, so a timeout ends everything it started. */
function killGroup(pid: number | undefined) {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** An argv as a person would type it: words with spaces or quotes single-quoted. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)).join(' ');
}

export function describeResult(result: CommandResult): string {
  const how = result.timedOut ? 'timed out' : `exited with code ${result.exitCode}`;
  return `\`${result.command}\` ${how}\n${result.output}`;
}
