import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalNatsServer, type LocalNatsServer } from '../../core/nats/local-server.js';

export interface TestNatsServer extends LocalNatsServer {
  /** Stops the server and removes its store. */
  cleanup(): Promise<void>;
}

/** A nats-server with JetStream on a free port and a temp store, one per test file. */
export async function startTestNatsServer(): Promise<TestNatsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-nats-'));
  const server = await startLocalNatsServer({ storeDir: dir });
  return Object.assign(server, {
    async cleanup() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  });
}
