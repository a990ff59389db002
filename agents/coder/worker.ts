/**
 * The coder: in a fresh clone on the task's branch, run the agent loop (harness/loop.ts) with
 * the coder's tools in the sandbox. When the model calls `finish`, the repository's lint and
 * test commands run in the sandbox, so nothing is pushed as finished without them; a failure goes
 * back to the model, which goes on within its limits. The commands and the repository's
 * instruction files come from the default branch, never from the branch being worked on. Then:
 *
 * - finished: commit, push, `code.committed`;
 * - a limit reached: commit and push what was done, `job.failed` saying which limit and where
 *   the work is (`stagegate retry` continues from the branch);
 * - a command that needs approval: commit and push what was done, `command.approval_requested`
 *   with notes on what was done and what comes next; the resumed job may run the command.
 *
 * A change that adds a secret is refused at finish (the model is told where), and never pushed:
 * a push that would send one fails the job naming file, line and rule (`secret-check.ts`).
 *
 * A job with `update` brings the branch up to date with its base instead (`branch-update.ts`):
 * the base is merged in, or the branch rebased onto it; a clean update whose checks pass is
 * pushed without a model call; conflicts or failing checks go to the model, and an update it
 * cannot finish fails the job naming the files and hunks, with nothing pushed. Commits on the
 * branch that Stagegate did not make are kept (a branch holding one is merged, never rebased)
 * and named in `code.committed`.
 *
 * A model or infrastructure failure fails the job with its clone left to inspect.
 */
import type { JobContext, JobHandler, JobOutcome } from '../../core/bus/job-worker.js';
import type { ForeignCommit, ImplementRequest, ReviewAnswer, Usage } from '../../core/bus/messages.js';
import type { CoderConfig, ModelPrice } from '../../core/config.js';
import { errorMessage, isStagegateError } from '../../core/errors.js';
import { describeResult, type CommandResult } from '../../core/exec/run-command.js';
import { NUMSTAT_ARGS, parseNumstat } from '../../core/git/numstat.js';
import { cloneForJob, remoteBranchExists, type Workspace } from '../../core/git/workspace.js';
import { loadPrompt } from '../../core/model/load-prompt.js';
import type { TurnClient } from '../../core/model/turn.js';
import { commandsFor, detectCommands } from '../../core/repo/commands.js';
import { readRepoInstructions, renderRepoInstructions } from '../../core/repo/instructions.js';
import { keywordsOf, renderRepoView } from '../../core/repo/repo-view.js';
import { untrustedBlock } from '../../core/model/untrusted.js';
import { withEgress, type Sandbox } from '../../core/sandbox/index.js';
import { describeFindings } from '../../core/security/secret-scan.js';
import { emptyUsage } from '../../core/task-record.js';
import {
  capLimits,
  finishChecks,
  renderChecks,
  renderTaskMessage,
  runCoderLoop,
  type CoderLoopResult,
  type FinishVerdict,
  type PlanStep,
  type ToolContext,
  type ToolDefinition,
  type ToolOutcome,
} from './harness/index.js';
import { executeToolCall, toolDefinitions } from './harness/tools/index.js';
import { commitMerge, continueRebase, foreignCommitsOn, isMerging, isRebasing, mergeFromBase, rebaseOntoBase, renderUpdateMessage, stageResolution, unresolvedConflicts } from './branch-update.js';
import { describeConflictPlaces, renderConflictHunks, type ConflictedFile } from './conflicts.js';
import { answersFor } from './review-answers.js';
import { assertPushIsClean, secretFeedback, secretsInWork } from './secret-check.js';

const PROMPT = loadPrompt(import.meta.url);

export interface CoderTools {
  definitions(): readonly ToolDefinition[];
  execute(name: string, argumentsJson: string, ctx: ToolContext): Promise<ToolOutcome>;
}

export interface CoderDeps {
  turnClient: TurnClient;
  workDir: string;
  commandTimeoutMs: number;
  coder: CoderConfig;
  /** The coder model's price, for `maxCostUsd`. */
  price: ModelPrice | undefined;
  /** Created on first use and shared by the worker's jobs. */
  sandbox(): Promise<Sandbox>;
  tools?: CoderTools;
  /** The wall-clock limit's clock; default Date.now. */
  clock?: () => number;
}

export function createCoderHandler(deps: CoderDeps): JobHandler<'coder'> {
  const tools = deps.tools ?? { definitions: toolDefinitions, execute: executeToolCall };
  return async (job, ctx) => {
    const sandbox = withEgress(await deps.sandbox(), job.task.egress, ctx.log);
    const ws = await cloneForJob({ repo: job.task.repo, workDir: deps.workDir, taskId: job.taskId, name: `implement-${job.attempt}` });
    const resumes = await remoteBranchExists(ws, job.branch);
    const start = `origin/${resumes ? job.branch : job.task.base}`;
    await ws.git(['checkout', '--quiet', '-B', job.branch, start]);
    const detected = await detectCommands(ws.dir, job.task.base);
    const commands = commandsFor(job.task, detected.commands);
    ctx.log.info({ commands, detected: detected.commands, detectedFrom: detected.sources }, 'repository commands');
    const instructions = renderRepoInstructions(await readRepoInstructions(ws.dir, job.task.base));
    const repoView = await renderRepoView({ dir: ws.dir, focus: job.plan.filesToTouch, keywords: keywordsOf(job.task.title, ...job.plan.filesToTouch) });
    const branchLog = resumes ? await ws.git(['log', '--oneline', '--no-decorate', `origin/${job.task.base}..HEAD`]) : '';
    // A person's commits on the branch are built on and kept: nothing here resets or force-pushes.
    const foreign = resumes ? await foreignCommitsOn(ws, `origin/${job.task.base}`) : [];
    if (foreign.length > 0) await ctx.progress(`keeping ${foreign.length} commit${foreign.length === 1 ? '' : 's'} on the branch not made by Stagegate: ${foreign.map((c) => c.sha.slice(0, 10)).join(', ')}`);

    let plan: PlanStep[] = [];
    const toolCtx: ToolContext = {
      worktree: ws.dir,
      sandbox,
      log: ctx.log,
      shellTimeoutMs: deps.coder.shellTimeoutMs,
      outputLimit: deps.coder.outputLimit,
      requireApproval: deps.coder.requireApproval,
      approvedCommands: job.approvedCommands,
      onPlanUpdate: async (steps) => {
        plan = steps;
        await ctx.progress(`plan: ${formatPlan(steps, ' · ')}`);
      },
    };
    /** Lint, then tests: the first that fails, or undefined when both pass. */
    const failedCheck = async (): Promise<FailedCheck | undefined> => {
      for (const check of finishChecks(commands)) {
        const result = await sandbox.run(check.command, { writableDir: ws.dir, cwd: ws.dir, timeoutMs: deps.commandTimeoutMs, outputLimit: deps.coder.outputLimit });
        await ctx.progress(`${check.kind === 'test' ? 'tests' : 'lint'}: ${check.command} → ${result.timedOut ? 'timed out' : `exit ${result.exitCode}`}`);
        if (result.exitCode !== 0 || result.timedOut) return { what: check.kind === 'test' ? 'The tests failed' : 'The lint check failed', result };
      }
      return undefined;
    };
    const runChecks = async (): Promise<FinishVerdict> => {
      const failed = await failedCheck();
      if (failed === undefined) return { accepted: true };
      return { accepted: false, output: `${failed.what}, so the task is not finished:\n${describeResult(failed.result)}\n\nFind the cause, fix it, and call finish again.` };
    };
    const verifyChange = async (): Promise<FinishVerdict> => {
      if (!(await hasChanges(ws, job))) {
        return { accepted: false, output: 'Nothing in the repository has changed yet, so the task is not done: make the change the plan describes, then call finish again.' };
      }
      const secrets = await secretsInWork(ws, start);
      if (secrets.length > 0) {
        await ctx.progress(`finish refused: the change adds a secret at ${describeFindings(secrets)}`);
        return { accepted: false, output: secretFeedback(secrets) };
      }
      return runChecks();
    };

    let conflicted: ConflictedFile[] = [];
    let taskMessage = renderTaskMessage({ job, instructions, repoView, commands, branchLog });
    // A person's commits are never rewritten: a branch holding one is merged whatever the strategy.
    const rebasing = job.update?.strategy === 'rebase' && foreign.length === 0;
    const update: UpdatePush = { foreign, rebasing, ...(rebasing ? { lease: await head(ws) } : {}) };
    if (job.update !== undefined) {
      if (job.update.strategy === 'rebase' && !rebasing) {
        await ctx.progress(`not rebasing: the branch holds ${foreign.length === 1 ? "a person's commit" : `${foreign.length} commits by people`}, which Stagegate never rewrites; merging ${job.task.base} instead`);
      }
      const outcome = rebasing ? await rebaseOntoBase(ws, job) : await mergeFromBase(ws, job);
      const doing = rebasing ? `rebasing onto ${job.task.base}` : `merging ${job.task.base}`;
      await ctx.progress(outcome.kind === 'conflicts' ? `${doing} conflicts in ${describeConflictPlaces(outcome.files)}` : `${doing}: ${outcome.kind}`);
      let checkFailure: string | undefined;
      if (outcome.kind !== 'conflicts') {
        const checks = await runChecks();
        if (checks.accepted) return pushUpdate(job, ws, ctx, update, emptyUsage()).catch((err: unknown) => failOnSecret(err, ws, emptyUsage(), ctx));
        checkFailure = checks.output;
      } else conflicted = outcome.files;
      taskMessage = renderUpdateMessage({ job, instructions, checks: renderChecks(commands), conflicts: conflicted, ...(checkFailure === undefined ? {} : { checkFailure }), foreign, rebasing });
    }
    /** An update is finished when no conflict is left (in every commit a rebase replays) and the checks pass. */
    const verifyUpdate = async (): Promise<FinishVerdict> => {
      const left = await unresolvedConflicts(ws, conflicted);
      const unmerged = await stageResolution(ws);
      if (left.length > 0 || unmerged.length > 0) {
        const places = describeConflictPlaces([...left, ...unmerged.filter((p) => !left.some((f) => f.path === p)).map((path) => ({ path, hunks: [] }))]);
        return { accepted: false, output: `Conflicts remain, so the ${rebasing ? 'rebase' : 'merge'} is not finished: ${places}. Edit these files so no conflict marker is left, then call finish again.` };
      }
      if (await isRebasing(ws)) {
        const next = await continueRebase(ws);
        if (next.kind === 'conflicts') {
          conflicted = next.files;
          const places = describeConflictPlaces(next.files);
          await ctx.progress(`rebasing onto ${job.task.base}: the next commit conflicts in ${places}`);
          return {
            accepted: false,
            output: `That commit is resolved and the rebase moved on, but the next commit conflicts in ${places}:\n\n${untrustedBlock('CONFLICT HUNKS', renderConflictHunks(next.files))}\n\nResolve these the same way, then call finish again.`,
          };
        }
      }
      return runChecks();
    };

    const result = await runCoderLoop({
      taskId: job.taskId,
      turnClient: deps.turnClient,
      instructions: PROMPT,
      tools: tools.definitions(),
      taskMessage,
      executeTool: (call) => tools.execute(call.name, call.arguments, toolCtx),
      verifyFinish: job.update === undefined ? verifyChange : verifyUpdate,
      limits: capLimits(deps.coder, job.task.coderCaps),
      price: deps.price,
      compaction: deps.coder,
      progress: ctx.progress,
      log: ctx.log,
      ...(deps.clock === undefined ? {} : { clock: deps.clock }),
    });
    const concluded = job.update === undefined ? conclude(job, ws, result, { plan, ctx, foreign, failedCheck }) : concludeUpdate(job, ws, result, conflicted, ctx, update);
    const outcome = await concluded.catch((err: unknown) => failOnSecret(err, ws, result.usage, ctx));
    // A failed job's clone stays to inspect; the other outcomes' work is on the branch.
    if (outcome.type !== 'job.failed') await ws.remove();
    return outcome;
  };
}

/** A lint or test command that did not pass. */
interface FailedCheck {
  what: string;
  result: CommandResult;
}

interface ConcludeContext {
  plan: PlanStep[];
  ctx: JobContext;
  foreign: ForeignCommit[];
  /** The repository's lint and test commands, as at finish. */
  failedCheck(): Promise<FailedCheck | undefined>;
}

/**
 * Commits and pushes what the loop left, and words the job's result. Unfinished work is pushed
 * too (so `stagegate retry` or the resumed job builds on it), after lint and tests, whose
 * outcome its commit message records: a push never goes out unchecked, even one that is not done.
 */
async function conclude(job: ImplementRequest, ws: Workspace, result: CoderLoopResult, { plan, ctx, foreign, failedCheck }: ConcludeContext): Promise<JobOutcome> {
  const { usage } = result;
  const unfinished = async (body: string) => commitAndPush(ws, job, (await hasUncommitted(ws)) ? `${body}\n\n${await checksLine(failedCheck)}` : body);
  switch (result.kind) {
    case 'finished': {
      const commit = await commitAndPush(ws, job, result.summary);
      // The change's paths and size are facts gate policies decide on (auto-approval rules).
      const change = parseNumstat(await ws.git([...NUMSTAT_ARGS, `origin/${job.task.base}...HEAD`]));
      return {
        type: 'code.committed',
        branch: job.branch,
        commit: commit ?? (await head(ws)),
        summary: result.summary,
        attempts: Math.max(1, result.finishAttempts),
        usage,
        ...change,
        ...(foreign.length === 0 ? {} : { foreignCommits: foreign }),
        ...answersOf(job, result.answers),
      };
    }
    case 'limit': {
      const commit = await unfinished(`Work in progress: the coder stopped at ${result.reason}.\n\n${notesOf(result, plan)}`);
      const where = commit === null ? 'nothing was changed' : `the work so far is committed on ${job.branch} at ${commit.slice(0, 10)} and \`stagegate retry\` continues from it`;
      await ctx.progress(`stopped at ${result.reason} after ${result.turns} turns`);
      return { type: 'job.failed', stage: 'implement', reason: `coder stopped at ${result.reason} after ${result.turns} turns; ${where}; worktree left at ${ws.dir}`, usage };
    }
    case 'needs-approval': {
      const notes = `${notesOf(result, plan)}\nWanted to run next: ${result.command}`;
      const commit = await unfinished(`Work in progress: waiting for approval to run \`${result.command}\`.\n\n${notes}`);
      return { type: 'command.approval_requested', command: result.command, pattern: result.pattern, branch: job.branch, commit, notes, usage };
    }
  }
}

/** How an update round's result goes out. */
interface UpdatePush {
  foreign: ForeignCommit[];
  rebasing: boolean;
  /** A rebase replaces the branch: only if it still points at this commit (the tip the rebase started from). */
  lease?: string;
}

/**
 * An update round's end: the resolved merge or rebase (and any fix) committed and pushed; an
 * update the model could not finish fails, naming what still conflicts, and pushes nothing.
 */
async function concludeUpdate(job: ImplementRequest, ws: Workspace, result: CoderLoopResult, conflicted: ConflictedFile[], ctx: JobContext, update: UpdatePush): Promise<JobOutcome> {
  const what = update.rebasing ? `rebase ${job.branch} onto ${job.task.base}` : `merge ${job.task.base} into ${job.branch}`;
  if (result.kind === 'finished') {
    if (await isMerging(ws)) await commitMerge(ws, job);
    else await commitWork(ws, job, result.summary);
    return pushUpdate(job, ws, ctx, update, result.usage, result.summary);
  }
  const why = result.kind === 'limit' ? `the coder stopped at ${result.reason}` : `the coder wanted to run \`${result.command}\`, which needs approval`;
  const left = await unresolvedConflicts(ws, conflicted);
  const reason =
    left.length > 0
      ? `could not ${what}: conflicts remain in ${describeConflictPlaces(left)} (${why}); nothing was pushed; worktree left at ${ws.dir}\n\n${renderConflictHunks(left, 10)}`
      : `could not finish the ${update.rebasing ? 'rebase' : 'merge'} (${what}): ${why}; nothing was pushed; worktree left at ${ws.dir}`;
  await ctx.progress(`update failed: ${left.length > 0 ? `conflicts remain in ${describeConflictPlaces(left)}` : why}`);
  return { type: 'job.failed', stage: 'implement', reason, usage: result.usage };
}

/**
 * Pushes the updated branch: a merge as a fast-forward (it has the old tip as its first parent),
 * a rebase as a replacement leased on the tip it started from, so a push made meanwhile is
 * never overwritten.
 */
async function pushUpdate(job: ImplementRequest, ws: Workspace, ctx: JobContext, update: UpdatePush, usage: Usage, summary?: string): Promise<JobOutcome> {
  await assertPushIsClean(ws, job.taskId);
  const ref = `refs/heads/${job.branch}`;
  await ws.git(['push', '--quiet', ...(update.lease === undefined ? [] : [`--force-with-lease=${ref}:${update.lease}`]), 'origin', `HEAD:${ref}`]);
  const commit = await head(ws);
  const change = parseNumstat(await ws.git([...NUMSTAT_ARGS, `origin/${job.task.base}...HEAD`]));
  await ctx.progress(`pushed the update of ${job.branch} from ${job.task.base} at ${commit.slice(0, 10)}${update.rebasing ? ' (rebased)' : ''}`);
  await ws.remove();
  const clean = update.rebasing
    ? `Rebased ${job.branch} onto ${job.task.base}; every commit applied cleanly and the checks pass.`
    : `Merged ${job.task.base} into ${job.branch}; it merged cleanly and the checks pass.`;
  return {
    type: 'code.committed',
    branch: job.branch,
    commit,
    summary: summary ?? clean,
    attempts: 1,
    usage,
    ...change,
    ...(update.foreign.length === 0 ? {} : { foreignCommits: update.foreign }),
  };
}

/** The commit made, or null when there was nothing to commit. Throws SECRET_FOUND, before pushing, when the push would send a secret. */
async function commitAndPush(ws: Workspace, job: ImplementRequest, body: string): Promise<string | null> {
  const commit = await commitWork(ws, job, body);
  if (commit === null) return null;
  await assertPushIsClean(ws, job.taskId);
  await ws.git(['push', '--quiet', 'origin', `HEAD:refs/heads/${job.branch}`]);
  return commit;
}

/** What lint and tests said of unfinished work, for its commit message; the work is pushed whatever they say. */
async function checksLine(failedCheck: () => Promise<FailedCheck | undefined>): Promise<string> {
  let failed: FailedCheck | undefined;
  try {
    failed = await failedCheck();
  } catch (err) {
    return `Lint and tests before this push: could not run (${errorMessage(err).slice(0, 300)}).`;
  }
  if (failed === undefined) return 'Lint and tests before this push: passed.';
  return `Lint and tests before this push: ${failed.what.toLowerCase()}.\n${describeResult(failed.result).slice(0, 2_000)}`;
}

async function hasUncommitted(ws: Workspace): Promise<boolean> {
  await ws.git(['add', '--all']);
  return (await ws.git(['status', '--porcelain'])).trim() !== '';
}

/** Commits what the worktree holds; null when there is nothing to commit. */
async function commitWork(ws: Workspace, job: ImplementRequest, body: string): Promise<string | null> {
  if (!(await hasUncommitted(ws))) return null;
  await ws.git(['commit', '--quiet', '-m', `${job.task.title}\n\n${body}\n\nStagegate-Task: ${job.taskId} (round ${job.round})`]);
  return head(ws);
}

/** A push stopped for a secret fails the job with where it is; the commit stays in the clone, on no remote. */
async function failOnSecret(err: unknown, ws: Workspace, usage: Usage, ctx: JobContext): Promise<JobOutcome> {
  if (!isStagegateError(err, 'SECRET_FOUND')) throw err;
  ctx.log.warn({ findings: err.details?.findings }, 'push blocked: the change adds a secret');
  await ctx.progress(`push blocked: ${err.message}`);
  return { type: 'job.failed', stage: 'implement', reason: `push blocked: ${err.message}; nothing was pushed; worktree left at ${ws.dir}`, usage };
}

async function head(ws: Workspace): Promise<string> {
  return (await ws.git(['rev-parse', 'HEAD'])).trim();
}

/** Uncommitted changes, or commits on the branch beyond the base (a resumed task). */
async function hasChanges(ws: Workspace, job: ImplementRequest): Promise<boolean> {
  await ws.git(['add', '--all']);
  if ((await ws.git(['status', '--porcelain'])).trim() !== '') return true;
  return (await ws.git(['rev-list', '--count', `origin/${job.task.base}..HEAD`])).trim() !== '0';
}

function notesOf(result: CoderLoopResult, plan: PlanStep[]): string {
  const lines = [`After ${result.turns} turns.`];
  if (plan.length > 0) lines.push(`Plan:\n${formatPlan(plan, '\n')}`);
  if (result.lastAssistantText !== '') lines.push(`Last note from the coder: ${result.lastAssistantText}`);
  return lines.join('\n');
}

function formatPlan(steps: PlanStep[], separator: string): string {
  const mark = { completed: '[x]', in_progress: '[>]', pending: '[ ]' } as const;
  return steps.map((s) => `${mark[s.status]} ${s.step}`).join(separator);
}

/** The answers to the job's review comments, when it had any with ids. */
function answersOf(job: ImplementRequest, given: ReviewAnswer[] | undefined): { answers?: ReviewAnswer[] } {
  const answers = answersFor(job.reviewComments, given ?? []);
  return answers === undefined ? {} : { answers };
}
