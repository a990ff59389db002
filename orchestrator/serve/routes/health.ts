/**
 * `GET /healthz`: the process answers. `GET /readyz`: it can do its work, which means a NATS
 * round trip within a second; a load balancer stops sending requests while it is 503.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { sendError } from '../http-errors.js';
import type { RouteModule } from '../route-module.js';

const NATS_PROBE_TIMEOUT_MS = 1_000;

export function healthRoutes(deps: { nc: NatsConnection; channels: () => string[] }): RouteModule {
  return {
    name: 'health',
    mount(app) {
      app.get('/healthz', (_req, res) => {
        res.json({ status: 'ok' });
      });
      app.get('/readyz', async (_req, res) => {
        const problem = await natsProblem(deps.nc);
        if (problem !== undefined) return sendError(res, 503, 'NATS_UNREACHABLE', `not ready: NATS ${problem}`);
        res.json({ status: 'ready', nats: 'connected', channels: deps.channels() });
      });
    },
  };
}

async function natsProblem(nc: NatsConnection): Promise<string | undefined> {
  if (nc.isClosed()) return 'connection is closed';
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`did not answer within ${NATS_PROBE_TIMEOUT_MS} ms`), NATS_PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([nc.flush().then(() => undefined), timeout]);
  } catch (err) {
    return `round trip failed: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    clearTimeout(timer);
  }
}
