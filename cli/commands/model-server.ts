/**
 * `stagegate model-server`: runs the scripted model as its own process, so the demo and
 * end-to-end tests point agents at it through OPENAI_BASE_URL like any real endpoint.
 * Logs go to stderr; stdout carries only the ready line, which callers wait for.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { createLogger } from '../../core/log.js';
import { parseAt } from '../../core/parse.js';
import { startScriptedModelServer } from '../../core/scripted-model/index.js';

const ModelServerOptions = z.object({
  script: z.string().min(1),
  port: z
    .string()
    .regex(/^\d+$/, 'expected a port number from 0 to 65535')
    .transform(Number)
    .pipe(z.number().max(65535, 'expected a port number from 0 to 65535')),
  record: z.string().min(1).optional(),
});

export function registerModelServer(program: Command): void {
  program
    .command('model-server')
    .description('Serve scripted answers over the OpenAI Responses API, for tests and the demo.')
    .requiredOption('--script <file>', 'JSON script: {"answers": {"planner": [{"json": {...}}], "coder": [...]}}')
    .option('--port <n>', 'port to listen on; 0 picks a free one', '0')
    .option('--record <file>', 'append every request received to this file, one JSON line each')
    .action(async (raw: unknown) => {
      const options = parseAt(ModelServerOptions, raw, 'stagegate model-server options');
      const log = createLogger({ name: 'model-server', destination: process.stderr });
      const server = await startScriptedModelServer({
        script: { file: options.script },
        port: options.port,
        log,
        record: options.record,
      });
      console.log(`scripted model listening on ${server.url} — set OPENAI_BASE_URL to this`);
      const signal = await stopSignal();
      await server.close();
      log.info({ signal, requests: server.requests.length, unused: server.remaining() }, 'scripted model stopped');
    });
}

function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
