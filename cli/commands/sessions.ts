/** `stagegate session start|status|list|pause|resume|stop`: long-running sessions that turn a goal into a backlog of tasks. */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { AgentRole } from '../../core/bus/messages.js';
import { SessionBudget, SessionSpec } from '../../core/bus/session-messages.js';
import type { Config } from '../../core/config.js';
import { StagegateError } from '../../core/errors.js';
import { modelFor } from '../../core/model/openai-client.js';
import { parseAt, parseJsonAt } from '../../core/parse.js';
import { GatePolicies } from '../../core/policy.js';
import { createSessionClient, type SessionClient } from '../../orchestrator/sessions/session-client.js';
import { formatSession, formatSessionLine } from '../format-session.js';
import { parseDuration, parseUntil } from '../durations.js';
import { normaliseRepo } from '../repo-path.js';
import { withStageTimeouts } from '../../orchestrator/timers/stage-timeouts.js';
import { openRuntime } from '../runtime.js';
import { print } from '../print.js';

async function withSessions<T>(command: Command, run: (client: SessionClient, config: Readonly<Config>) => Promise<T>): Promise<T> {
  const { nc, config } = await openRuntime(command, 'cli');
  try {
    return await run(await createSessionClient(nc), config);
  } finally {
    await nc.drain();
  }
}

interface BudgetOptions {
  budgetTokens?: string;
  budgetUsd?: string;
  until?: string;
}

function budgetOf(o: BudgetOptions): SessionBudget {
  return parseAt(
    SessionBudget,
    {
      ...(o.budgetTokens === undefined ? {} : { tokens: Number(o.budgetTokens) }),
      ...(o.budgetUsd === undefined ? {} : { usd: Number(o.budgetUsd) }),
      ...(o.until === undefined ? {} : { until: parseUntil(o.until, new Date()) }),
    },
    'budget',
  );
}

const withBudgetOptions = (command: Command) =>
  command
    .option('--budget-tokens <n>', 'input plus output tokens over the whole session')
    .option('--budget-usd <x>', 'dollars over the whole session, priced with model.pricing')
    .option('--until <time>', 'no new work after this time (ISO time, or a duration from now: 90m, 8h, 2d)');

/** `owner/repo#123`: the issue digests are posted to. */
function issueOf(text: string) {
  const match = /^([^/\s]+)\/([^#\s]+)#(\d+)$/.exec(text);
  if (match === null) throw new StagegateError('CONFIG_INVALID', `--digest-issue: expected owner/repo#number, got '${text}'`);
  return { kind: 'github' as const, owner: match[1] as string, repo: match[2] as string, issueNumber: Number(match[3]) };
}

interface StartOptions extends BudgetOptions {
  repo: string;
  goal: string;
  base: string;
  parallel: string;
  policy?: string;
  onBudget: 'finish' | 'stop';
  digestEvery?: string;
  digestIssue?: string;
  digestSlack?: string;
  testCommand?: string;
  deployCommand?: string;
  json?: boolean;
}

export function registerSessionCommands(program: Command): void {
  const session = program.command('session').description('long-running sessions: a goal becomes a backlog of tasks, run within budgets');

  withBudgetOptions(
    session
      .command('start')
      .description('start a session; prints its id')
      .requiredOption('--repo <path-or-url>', 'the git repository to work on')
      .requiredOption('--goal <text>', 'what the session is to achieve')
      .option('--base <branch>', 'the target branch', 'main')
      .option('--parallel <k>', 'tasks running at once', '2')
      .option('--policy <file>', 'gate policies for the session\'s tasks (JSON, like `gates` in the config file); default: the configured gates')
      .addOption(new Option('--on-budget <what>', 'at a budget: let running tasks finish, or stop them').choices(['finish', 'stop']).default('finish'))
      .option('--digest-every <duration>', 'post a digest this often (e.g. 4h)')
      .option('--digest-issue <owner/repo#n>', 'post digests as comments on this GitHub issue (through `stagegate serve`)')
      .option('--digest-slack <channel>', 'post digests to this Slack channel (through `stagegate serve`)')
      .option('--test-command <cmd>', "the repository's test command (default: detected)")
      .option('--deploy-command <cmd>', 'a command the deployer runs after merging')
      .option('--json', 'print JSON'),
  ).action(async (o: StartOptions, command: Command) => {
    await withSessions(command, async (client, config) => {
      const policies = o.policy === undefined ? config.gates : parseJsonAt(GatePolicies, readFileSync(o.policy, 'utf8'), `policy file ${o.policy}`);
      const spec = parseAt(
        SessionSpec,
        {
          repo: normaliseRepo(o.repo),
          goal: o.goal,
          base: o.base,
          submittedBy: config.user,
          parallel: Number(o.parallel),
          budget: budgetOf(o),
          onBudget: o.onBudget,
          ...(o.digestEvery === undefined ? {} : { digestEveryMs: parseDuration(o.digestEvery, '--digest-every') }),
          digestTo: {
            ...(o.digestIssue === undefined ? {} : { github: issueOf(o.digestIssue) }),
            ...(o.digestSlack === undefined ? {} : { slackChannel: o.digestSlack }),
          },
          ...(o.testCommand === undefined ? {} : { testCommand: o.testCommand }),
          ...(o.deployCommand === undefined ? {} : { deployCommand: o.deployCommand }),
          ...withStageTimeouts(config.stageTimeoutsMs),
          pricing: config.model.pricing,
          models: Object.fromEntries(AgentRole.options.map((role) => [role, modelFor(config.model, role)])),
        },
        'session',
      );
      const sessionId = await client.start({ spec, policies, maxReviewRounds: config.maxReviewRounds });
      print(o.json, { sessionId }, sessionId);
    });
  });

  session
    .command('status')
    .description('show a session: its backlog as a tree with each task\'s state, its spend and what it waits for')
    .argument('<sessionId>')
    .option('--json', 'print JSON')
    .action(async (sessionId: string, o: { json?: boolean }, command: Command) => {
      await withSessions(command, async (client) => {
        const record = await client.get(sessionId);
        print(o.json, record, formatSession(record));
      });
    });

  session
    .command('list')
    .description('every session in a line each')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, command: Command) => {
      await withSessions(command, async (client) => {
        const records = await client.list();
        print(o.json, records, records.length === 0 ? 'no sessions' : records.map(formatSessionLine).join('\n'));
      });
    });

  session
    .command('pause')
    .description('start no new tasks (running ones go on)')
    .argument('<sessionId>')
    .option('--reason <text>')
    .action(async (sessionId: string, o: { reason?: string }, command: Command) => {
      await withSessions(command, (client, config) => client.pause(sessionId, config.user, o.reason));
    });

  withBudgetOptions(
    session.command('resume').description('go on after a pause; a budget that paused it must be raised with the same options as start').argument('<sessionId>'),
  ).action(async (sessionId: string, o: BudgetOptions, command: Command) => {
    await withSessions(command, async (client, config) => {
      const budget = budgetOf(o);
      await client.resume(sessionId, config.user, Object.keys(budget).length === 0 ? undefined : budget);
    });
  });

  session
    .command('stop')
    .description('end the session and cancel its running tasks')
    .argument('<sessionId>')
    .option('--reason <text>')
    .action(async (sessionId: string, o: { reason?: string }, command: Command) => {
      await withSessions(command, (client, config) => client.stop(sessionId, config.user, o.reason));
    });
}
