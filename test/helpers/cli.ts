/** The real `stagegate` command in a child process, with a controlled environment. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { createLogger } from '../../core/log.js';
import { startOrchestrator, type OrchestratorOptions } from '../../orchestrator/orchestrator.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startTestNatsServer, type TestNatsServer } from './nats-server.js';

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

/**
 * What a test of the CLI runs it against: a nats-server of its own, an orchestrator (no
 * workers: submitted tasks stay in `planning`), a client for checking, and a scratch directory
 * the CLI runs in.
 */
export interface CliHarness {
  server: TestNatsServer;
  nc: NatsConnection;
  client: TaskClient;
  /** The CLI's working directory. */
  tmp: string;
  run(args: string[], extraEnv?: Record<string, string>): Promise<CliResult>;
  stop(): Promise<void>;
}

export async function startCliHarness(name: string, orchestrator: Pick<OrchestratorOptions, 'retry'> = {}): Promise<CliHarness> {
  const tmp = await mkdtemp(join(tmpdir(), `sg-${name}-`));
  const server = await startTestNatsServer();
  const nc = await connectBus(server.url, `${name}-test`);
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  const running = await startOrchestrator({ nc, log: createLogger({ level: 'silent' }), ...orchestrator });
  return {
    server,
    nc,
    client: await createTaskClient(nc),
    tmp,
    run: (args, extraEnv = {}) => runStagegate(args, { natsUrl: server.url, cwd: tmp }, extraEnv),
    async stop() {
      await running.stop();
      await nc.drain();
      await server.cleanup();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
