/**
 * Starts Stagegate's own processes (orchestrator, workers) as children and stops them, one at a
 * time or all: `up`, `autoscale` and `demo` use it. A child is ready when it prints its ready
 * line on stderr. Stopping is SIGTERM: a worker finishes the jobs in hand before it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { StagegateError } from '../core/errors.js';

const BIN = fileURLToPath(new URL('../bin/stagegate.js', import.meta.url));

export interface Child {
  name: string;
  process: ChildProcess;
}

export interface ProcessGroup {
  start(name: string, args: string[]): Promise<Child>;
  /** SIGTERM, then waits for the exit (SIGKILL after `forceAfterMs`, if given); the child leaves the group. */
  stop(child: Child, options?: { forceAfterMs?: number }): Promise<void>;
  stopAll(): Promise<void>;
  readonly children: readonly Child[];
}

export function createProcessGroup(options: { env: NodeJS.ProcessEnv; logFile?: string; readyTimeoutMs?: number }): ProcessGroup {
  const children: Child[] = [];
  const log: WriteStream | undefined = options.logFile === undefined ? undefined : createWriteStream(options.logFile, { flags: 'a' });
  return {
    children,
    async start(name, args) {
      const proc = spawn(process.execPath, [BIN, ...args], {
        env: options.env,
        stdio: ['ignore', log === undefined ? 'inherit' : 'pipe', 'pipe'],
      });
      if (log !== undefined) proc.stdout?.pipe(log, { end: false });
      const child = { name, process: proc };
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        let stderr = '';
        const timer = setTimeout(() => fail(`${name} did not become ready within ${(options.readyTimeoutMs ?? 30_000) / 1000} s`), options.readyTimeoutMs ?? 30_000);
        const fail = (why: string) => {
          clearTimeout(timer);
          reject(new StagegateError('COMMAND_FAILED', `${why}: ${stderr.trim().split('\n').slice(-5).join(' / ')}`));
        };
        proc.stderr?.on('data', (chunk: Buffer) => {
          const text = chunk.toString();
          log?.write(text);
          if (log === undefined) process.stderr.write(text);
          stderr = (stderr + text).slice(-4_000);
          if (/ ready\b/.test(stderr)) {
            clearTimeout(timer);
            resolve();
          }
        });
        proc.once('exit', (code) => fail(`${name} exited with code ${code}`));
      });
      return child;
    },
    async stop(child, stopOptions = {}) {
      await terminate(child.process, stopOptions.forceAfterMs);
      const at = children.indexOf(child);
      if (at >= 0) children.splice(at, 1);
    },
    async stopAll() {
      await Promise.all(children.map(({ process: proc }) => terminate(proc, 10_000)));
      log?.end();
    },
  };
}

/** Children already sent SIGTERM: a second one would kill a worker mid-job (its handler runs once). */
const terminated = new WeakSet<ChildProcess>();

function terminate(proc: ChildProcess, forceAfterMs: number | undefined): Promise<void> {
  return new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const force = forceAfterMs === undefined ? undefined : setTimeout(() => proc.kill('SIGKILL'), forceAfterMs);
    proc.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    if (!terminated.has(proc)) proc.kill('SIGTERM');
    terminated.add(proc);
  });
}
