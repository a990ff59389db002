/**
 * The autoscaler's numbers in Prometheus' text format on `GET /metrics`, so a cluster autoscaler
 * (a Kubernetes HPA on external metrics, through prometheus-adapter) can follow
 * `stagegate_workers_desired` across machines. `GET /healthz` answers while the process runs.
 */
import { createServer, type Server } from 'node:http';
import { StagegateError } from '../../core/errors.js';
import type { RoleStatus } from './autoscaler.js';

const GAUGES: ReadonlyArray<{ name: string; help: string; value: (s: RoleStatus) => number | undefined }> = [
  { name: 'stagegate_jobs_pending', help: 'Jobs of the role waiting for a worker (JetStream consumer num_pending).', value: (s) => s.pending },
  { name: 'stagegate_jobs_in_flight', help: 'Jobs of the role a worker holds, not yet acked (num_ack_pending).', value: (s) => s.inFlight },
  { name: 'stagegate_workers_desired', help: 'Workers the role should have, between --min and --max, after the cool-down.', value: (s) => s.desired },
  { name: 'stagegate_workers_running', help: 'Workers of the role this autoscaler runs that take jobs.', value: (s) => s.running },
  { name: 'stagegate_workers_stopping', help: 'Workers of the role told to stop, finishing their jobs in hand.', value: (s) => s.stopping },
];

/** One gauge family per metric, one sample per role; a metric no role has is left out. */
export function renderMetrics(statuses: readonly RoleStatus[]): string {
  const lines: string[] = [];
  for (const gauge of GAUGES) {
    const samples = statuses.flatMap((s) => {
      const value = gauge.value(s);
      return value === undefined ? [] : [`${gauge.name}{role="${s.role}"} ${value}`];
    });
    if (samples.length === 0) continue;
    lines.push(`# HELP ${gauge.name} ${gauge.help}`, `# TYPE ${gauge.name} gauge`, ...samples);
  }
  return `${lines.join('\n')}\n`;
}

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(options: { host: string; port: number; status: () => readonly RoleStatus[] }): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (req.method === 'GET' && path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(renderMetrics(options.status()));
    } else if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`stagegate autoscale serves GET /metrics and GET /healthz, not ${req.method ?? 'GET'} ${path}\n`);
    }
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', (err) => reject(new StagegateError('CONFIG_INVALID', `metrics cannot listen on ${options.host}:${options.port}: ${err.message}`, { cause: err })));
    server.listen(options.port, options.host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : options.port);
    });
  });
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err === undefined ? resolve() : reject(err)));
        server.closeAllConnections();
      }),
  };
}
