/**
 * Stagegate's real processes (orchestrators, workers) as children of a test, pointed at the
 * test's nats-server and scripted model by env, each killable on its own.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentRole } from '../../core/bus/messages.js';
import { createProcessGroup, type Child, type ProcessGroup } from '../../cli/process-group.js';

export interface StagegateProcesses {
  group: ProcessGroup;
  workDir: string;
  logFile: string;
  orchestrator(): Promise<Child>;
  worker(role: AgentRole, extraArgs?: string[]): Promise<Child>;
  /** Orchestrator plus one worker per role. */
  all(): Promise<void>;
  kill(child: Child): Promise<void>;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

export async function startStagegateProcesses(input: { natsUrl: string; modelUrl: string; env?: Record<string, string> }): Promise<StagegateProcesses> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-e2e-'));
  const workDir = join(dir, 'work');
  const logFile = join(dir, 'stagegate.log');
  const group = createProcessGroup({
    logFile,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NATS_URL: input.natsUrl,
      OPENAI_BASE_URL: input.modelUrl,
      OPENAI_API_KEY: 'test-key',
      STAGEGATE_WORK_DIR: workDir,
      STAGEGATE_USER: 'tester',
      STAGEGATE_LOG_LEVEL: 'debug',
      ...input.env,
    },
  });
  const worker = (role: AgentRole, extraArgs: string[] = []) => group.start(role, ['worker', role, ...extraArgs]);
  return {
    group,
    workDir,
    logFile,
    orchestrator: () => group.start('orchestrator', ['orchestrator']),
    worker,
    async all() {
      await group.start('orchestrator', ['orchestrator']);
      await Promise.all((['planner', 'coder', 'reviewer', 'deployer'] as const).map((role) => worker(role)));
    },
    async kill(child) {
      const exited = new Promise<void>((resolve) => child.process.once('exit', () => resolve()));
      child.process.kill('SIGKILL');
      await exited;
    },
    logs: () => readFile(logFile, 'utf8').catch(() => ''),
    stop: () => group.stopAll(),
  };
}
