/** git, run as a child process with its arguments as an array: nothing passes through a shell. */
import { execFile } from 'node:child_process';
import { explainGitFailure } from './git-failure.js';
import { StagegateError } from '../errors.js';

/** Who every commit Stagegate makes is by: a commit by anyone else on a task's branch was pushed by a person. */
export const STAGEGATE_EMAIL = 'stagegate@localhost';

const IDENTITY = ['-c', 'user.name=Stagegate', '-c', `user.email=${STAGEGATE_EMAIL}`, '-c', 'commit.gpgsign=false'];

const GIT_TIMEOUT_MS = 15 * 60_000;

export interface GitOptions {
  cwd: string;
  taskId?: string;
  /** Added to the environment: settings (`GIT_CONFIG_*`) that must stay out of the arguments, which errors quote. */
  env?: Record<string, string>;
}

/** Stopped at the time limit (not for printing more than the buffer holds, which kills it too). */
function timedOut(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  return 'killed' in err && err.killed === true && !('code' in err && err.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER');
}

export function git(args: string[], options: GitOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      [...IDENTITY, ...args],
      // A hung clone or push must not hold a job forever: it fails, and the job says why.
      { cwd: options.cwd, maxBuffer: 64 * 1024 * 1024, timeout: GIT_TIMEOUT_MS, killSignal: 'SIGKILL', env: { ...process.env, ...options.env, GIT_TERMINAL_PROMPT: '0' } },
      (err, stdout, stderr) => {
        if (err === null) return resolve(stdout);
        const output = (stderr || stdout || err.message).trim();
        const detail = output.split('\n').slice(-6).join(' / ');
        const explained = timedOut(err) ? `git ${args[0] ?? ''} took longer than ${GIT_TIMEOUT_MS / 60_000} minutes and was stopped: a very large repository or a slow network; try again, or look at the network between the worker and the repository` : explainGitFailure(args, output);
        reject(
          new StagegateError('GIT_FAILED', `${explained === undefined ? '' : `${explained}. `}git ${args.join(' ')} failed in ${options.cwd}: ${detail}`, {
            cause: err,
            ...(options.taskId === undefined ? {} : { taskId: options.taskId }),
          }),
        );
      },
    );
  });
}
