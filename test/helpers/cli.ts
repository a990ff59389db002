/** The real `stagegate` command in a child process, with a controlled environment. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/stagegate.js', import.meta.url));

export interface CliResult {
  /** The exit status; null when the process was killed (e.g. by the timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `stagegate <args>` against `natsUrl` as user `tester`; never rejects, so a test can assert on any exit. */
export function runStagegate(args: string[], where: { natsUrl: string; cwd: string }, extraEnv: Record<string, string> = {}): Promise<CliResult> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, NATS_URL: where.natsUrl, STAGEGATE_USER: 'tester', ...extraEnv };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, cwd: where.cwd, timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}
