/**
 * Starts a nats-server of our own with JetStream in a given store directory: the demo uses
 * one when NATS_URL is not set, and every test file starts one so it can stop and restart it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { StagegateError } from '../errors.js';
import { parseJsonAt } from '../parse.js';

export interface LocalNatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Graceful stop (SIGTERM), resolved when the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and store. */
  restart(): Promise<void>;
}

const PortsFile = z.object({ nats: z.array(z.string()).min(1) });

export async function startLocalNatsServer(options: { storeDir: string; binary?: string }): Promise<LocalNatsServer> {
  const binary = options.binary ?? 'nats-server';
  await mkdir(options.storeDir, { recursive: true });
  let proc = await launch(binary, options.storeDir, -1);
  const port = await readPort(options.storeDir, proc);

  const exit = async (signal: NodeJS.Signals) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  };

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir: options.storeDir,
    stop: () => exit('SIGTERM'),
    kill: () => exit('SIGKILL'),
    async restart() {
      await exit('SIGTERM');
      proc = await launch(binary, options.storeDir, port);
      await readPort(options.storeDir, proc);
    },
  };
}

function launch(binary: string, storeDir: string, port: number): Promise<ChildProcess> {
  const args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir, '--ports_file_dir', storeDir];
  const proc = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    proc.once('spawn', () => resolve(proc));
    proc.once('error', (err: NodeJS.ErrnoException) => {
      const hint =
        err.code === 'ENOENT'
          ? `${binary} is not installed: run 'stagegate doctor --install' (Debian/Ubuntu package nats-server), or see https://docs.nats.io/running-a-nats-service/introduction/installation`
          : err.message;
      reject(new StagegateError('TOOL_MISSING', `cannot start ${binary}: ${hint}`, { cause: err }));
    });
  });
}

/** nats-server writes `nats-server_<pid>.ports` once it listens; until then we wait. */
async function readPort(storeDir: string, proc: ChildProcess): Promise<number> {
  let stderr = '';
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const file = join(storeDir, `nats-server_${proc.pid}.ports`);
  for (let waited = 0; waited < 15_000; waited += 25) {
    if (proc.exitCode !== null) {
      throw new StagegateError('TOOL_MISSING', `nats-server exited with code ${proc.exitCode}: ${stderr.trim()}`);
    }
    if ((await readdir(storeDir)).includes(`nats-server_${proc.pid}.ports`)) {
      const ports = parseJsonAt(PortsFile, await readFile(file, 'utf8'), file);
      const url = new URL((ports.nats[0] as string).replace(/^nats:/, 'http:'));
      return Number(url.port);
    }
    await sleep(25);
  }
  proc.kill('SIGKILL');
  throw new StagegateError('BUS_TIMEOUT', `nats-server did not report its port within 15 s: ${stderr.trim()}`);
}
