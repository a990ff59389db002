import type { JobHandler } from '../../core/bus/job-worker.js';
import { describeResult } from '../../core/exec/run-command.js';
import { NUMSTAT_ARGS, parseNumstat } from '../../core/git/numstat.js';
import { cloneForJob } from '../../core/git/workspace.js';
import type { ModelClient } from '../../core/model/client.js';
import { loadPrompt } from '../../core/model/load-prompt.js';
import { commandsFor, detectCommands } from '../../core/repo/commands.js';
import { readRepoInstructions, renderRepoInstructions } from '../../core/repo/instructions.js';
import { withEgress, type Sandbox } from '../../core/sandbox/index.js';
import { decideReview } from './decide.js';
import { ReviewerReply } from './output.js';
import { renderReviewerInput } from './render-input.js';
import { reviewSecurity } from './security-review.js';

const PROMPT = loadPrompt(import.meta.url);
const MAX_DIFF = 60_000;

export interface ReviewerDeps {
  model: ModelClient;
  workDir: string;
  commandTimeoutMs: number;
  /** The branch's tests are the repository's code, as untrusted as a model's: they run sandboxed too. */
  sandbox(): Promise<Sandbox>;
}

export function createReviewerHandler(deps: ReviewerDeps): JobHandler<'reviewer'> {
  return async (job, ctx) => {
    const ws = await cloneForJob({ repo: job.task.repo, workDir: deps.workDir, taskId: job.taskId, name: `review-${job.attempt}` });
    await ws.git(['checkout', '--quiet', '--detach', job.commit]);
    const fullDiff = await ws.git(['diff', `origin/${job.task.base}...${job.commit}`]);
    const diff = fullDiff.length > MAX_DIFF ? `${fullDiff.slice(0, MAX_DIFF)}\n… [diff cut at ${MAX_DIFF} characters]` : fullDiff;
    const change = parseNumstat(await ws.git([...NUMSTAT_ARGS, `origin/${job.task.base}...${job.commit}`]));

    // Read from the default branch: the commit under review cannot change what judges it.
    const instructions = renderRepoInstructions(await readRepoInstructions(ws.dir, job.task.base));
    const detected = await detectCommands(ws.dir, job.task.base);
    const command = commandsFor(job.task, detected.commands).test;
    ctx.log.info({ command, ownCommand: job.task.testCommand !== undefined, detectedFrom: detected.sources.test }, 'repository test command');
    await ctx.progress(command === undefined ? 'no test command found' : `running ${command}`);
    const result =
      command === undefined
        ? undefined
        : await withEgress(await deps.sandbox(), job.task.egress, ctx.log).run(command, {
            writableDir: ws.dir,
            cwd: ws.dir,
            timeoutMs: deps.commandTimeoutMs,
          });
    const passed = result === undefined || (result.exitCode === 0 && !result.timedOut);
    const tests = result === undefined ? 'No test command was found.' : `${passed ? 'PASSED' : 'FAILED'}: ${describeResult(result)}`;

    await ctx.progress('asking the model for a verdict');
    const reply = await deps.model.generateStructured({
      taskId: job.taskId,
      role: 'reviewer',
      instructions: PROMPT,
      input: renderReviewerInput(job, { instructions, diff, tests }),
      schema: ReviewerReply,
      schemaName: 'verdict',
    });
    await ctx.progress('security review: checks on the change, then the model with the security brief');
    const security = await reviewSecurity({ model: deps.model, ws, job, diff, changedFiles: change.changedFiles, spent: reply.usage });
    await ws.remove();
    return decideReview(reply.value, { passed, command }, security.usage, change, security.review);
  };
}
