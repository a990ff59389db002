/** The `stagegate` command: each sub-command registers itself from cli/commands/. */
import { Command, CommanderError } from 'commander';
import { isStagegateError, errorMessage } from '../core/errors.js';
import { EXIT_CODE } from './exit-codes.js';
import { registerDeadLetters } from './commands/dead-letters.js';
import { registerDemo } from './commands/demo.js';
import { registerApplyPatch } from './commands/apply-patch.js';
import { registerAutoscale } from './commands/autoscale.js';
import { registerDoctor } from './commands/doctor.js';
import { registerModelServer } from './commands/model-server.js';
import { registerOrchestrator } from './commands/orchestrator.js';
import { registerServe } from './commands/serve.js';
import { registerSessionCommands } from './commands/sessions.js';
import { registerTaskCommands } from './commands/tasks.js';
import { registerUp } from './commands/up.js';
import { registerWorker } from './commands/worker.js';

const program = new Command('stagegate')
  .description('Moves software tasks through plan → implement → review → deploy, with humans holding the gates.')
  .option('-c, --config <file>', 'a JSON config file (also STAGEGATE_CONFIG)')
  .showHelpAfterError()
  .exitOverride();

for (const register of [
  registerDemo,
  registerUp,
  registerAutoscale,
  registerOrchestrator,
  registerServe,
  registerWorker,
  registerTaskCommands,
  registerSessionCommands,
  registerDeadLetters,
  registerModelServer,
  registerApplyPatch,
  registerDoctor,
]) {
  register(program);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = exitCodeFor(err);
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (isStagegateError(err)) {
    console.error(`stagegate: ${err.message}`);
    if (process.env.STAGEGATE_DEBUG) console.error(err.stack);
    return EXIT_CODE[err.code];
  }
  console.error(`stagegate: ${errorMessage(err)}`);
  if (process.env.STAGEGATE_DEBUG && err instanceof Error) console.error(err.stack);
  return 1;
}
