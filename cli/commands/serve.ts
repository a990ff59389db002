/**
 * `stagegate serve`: the HTTP server on the orchestrator side (health, the HTTP API, Slack's
 * HTTP mode, webhooks) and the Slack channel when it is configured. Runs until SIGTERM/SIGINT.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { parseAt } from '../../core/parse.js';
import { startServe } from '../../orchestrator/serve/serve.js';
import { openRuntime, untilSignal } from '../runtime.js';

const ServeOptions = z.object({
  port: z
    .string()
    .regex(/^\d+$/, 'expected a port number from 0 to 65535')
    .transform(Number)
    .pipe(z.number().max(65535, 'expected a port number from 0 to 65535'))
    .optional(),
});

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP server: /healthz, /readyz, the HTTP API (/api/tasks), Slack (POST /slack/events or Socket Mode) and GitHub webhooks (POST /webhooks/github)')
    .option('--port <n>', 'port to listen on (default STAGEGATE_PORT or 8787; 0 picks a free one)')
    .action(async (raw: unknown, command: Command) => {
      const options = parseAt(ServeOptions, raw, 'stagegate serve options');
      const { nc, log, config } = await openRuntime(command, 'serve');
      let serve;
      try {
        serve = await startServe({ config, nc, log, ...(options.port === undefined ? {} : { port: options.port }) });
      } catch (err) {
        await nc.drain();
        throw err;
      }
      console.error(`stagegate serve ready on ${serve.url} — ${serve.channels.join('; ')}`);
      await untilSignal(async () => {
        await serve.stop();
        await nc.drain();
      });
    });
}
