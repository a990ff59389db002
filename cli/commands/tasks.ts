/** The commands that act on tasks through the bus: submit, status, logs, approve, reject, cancel, retry. */
import { Option, type Command } from 'commander';
import type { NatsConnection } from '@nats-io/transport-node';
import { listDeadLetters } from '../../core/bus/dead-letters.js';
import { CommitSha, Gate, TaskSpec } from '../../core/bus/messages.js';
import { StagegateError } from '../../core/errors.js';
import { parseAt } from '../../core/parse.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import type { Config } from '../../core/config.js';
import { formatLogEntry, formatTask, formatTaskLine } from '../format.js';
import { normaliseRepo } from '../repo-path.js';
import { withStageTimeouts } from '../../orchestrator/timers/stage-timeouts.js';
import { openRuntime, untilSignal } from '../runtime.js';
import { print } from '../print.js';

async function withClient<T>(command: Command, run: (client: TaskClient, config: Readonly<Config>, nc: NatsConnection) => Promise<T>): Promise<T> {
  const { nc, config } = await openRuntime(command, 'cli');
  try {
    return await run(await createTaskClient(nc, { limits: config.limits }), config, nc);
  } finally {
    await nc.drain();
  }
}

export function registerTaskCommands(program: Command): void {
  program
    .command('submit')
    .description('submit a task; prints its id')
    .requiredOption('--repo <path-or-url>', 'the git repository to work on')
    .requiredOption('--title <title>', 'what to do, in one line')
    .option('--body <text>', 'details', '')
    .option('--base <branch>', 'the target branch', 'main')
    .option('--test-command <cmd>', 'the repository\'s test command (default: detected)')
    .option('--lint-command <cmd>', 'the repository\'s lint command, run with the tests before the coder finishes (default: detected)')
    .option('--build-command <cmd>', 'the repository\'s build command, named to the coder (default: detected)')
    .option('--deploy-command <cmd>', 'a command the deployer runs after merging')
    .option('--egress <host...>', "hosts the sandboxed commands may reach through the egress proxy, such as 'registry.npmjs.org' (default: no network)")
    .option('--json', 'print JSON')
    .action(async (o: { repo: string; title: string; body: string; base: string; testCommand?: string; lintCommand?: string; buildCommand?: string; deployCommand?: string; egress?: string[]; json?: boolean }, command: Command) => {
      await withClient(command, async (client, config) => {
        const spec = parseAt(
          TaskSpec,
          {
            repo: normaliseRepo(o.repo),
            title: o.title,
            body: o.body,
            base: o.base,
            ...(o.testCommand === undefined ? {} : { testCommand: o.testCommand }),
            ...(o.lintCommand === undefined ? {} : { lintCommand: o.lintCommand }),
            ...(o.buildCommand === undefined ? {} : { buildCommand: o.buildCommand }),
            ...(o.deployCommand === undefined ? {} : { deployCommand: o.deployCommand }),
            ...(o.egress === undefined ? {} : { egress: o.egress }),
            ...withStageTimeouts(config.stageTimeoutsMs),
            submittedBy: config.user,
          },
          'task',
        );
        const taskId = await client.submit({ spec, policies: config.gates, maxReviewRounds: config.maxReviewRounds });
        print(o.json, { taskId }, taskId);
      });
    });

  program
    .command('status')
    .description('show one task in full, or every task in a line each')
    .argument('[taskId]')
    .option('--json', 'print JSON')
    .action(async (taskId: string | undefined, o: { json?: boolean }, command: Command) => {
      await withClient(command, async (client, _config, nc) => {
        if (taskId !== undefined) {
          const record = await client.get(taskId);
          return print(o.json, record, formatTask(record, (await listDeadLetters(nc, { taskId })).length));
        }
        const records = await client.list();
        print(o.json, records, records.length === 0 ? 'no tasks' : records.map(formatTaskLine).join('\n'));
      });
    });

  program
    .command('logs')
    .description("show a task's log: every event applied to it and its agents' progress")
    .argument('<taskId>')
    .option('-f, --follow', 'keep printing new entries until interrupted')
    .option('--json', 'print JSON lines')
    .action(async (taskId: string, o: { follow?: boolean; json?: boolean }, command: Command) => {
      await withClient(command, async (client) => {
        await client.get(taskId);
        const abort = new AbortController();
        if (o.follow) void untilSignal(async () => abort.abort());
        for await (const entry of client.logs(taskId, { follow: o.follow === true, signal: abort.signal })) {
          print(o.json, entry, formatLogEntry(entry));
        }
      });
    });

  const gateOption = new Option('--gate <gate>', 'the gate (default: the one the task waits at)').choices(Gate.options);
  const decide = (decision: 'approve' | 'reject') =>
    async (taskId: string, o: { comment?: string; reason?: string; gate?: Gate; sha?: string; json?: boolean }, command: Command) => {
      await withClient(command, async (client, config) => {
        const comment = o.comment ?? o.reason;
        const answer = await client.decide({
          taskId,
          decision,
          by: config.user,
          via: 'cli',
          ...(comment === undefined ? {} : { comment }),
          ...(o.gate === undefined ? {} : { gate: o.gate }),
          ...(o.sha === undefined ? {} : { sha: parseAt(CommitSha, o.sha.toLowerCase(), '--sha') }),
        });
        if (answer.status === 'queued') {
          return print(o.json, answer, `${decision} queued for ${taskId}: no orchestrator has answered yet`);
        }
        if (!answer.counted) {
          throw new StagegateError('TASK_NOT_AT_GATE', `${decision} by ${config.user} was recorded but does not count: ${answer.note ?? 'refused by the policy'}`, { taskId });
        }
        print(o.json, answer, `${decision === 'approve' ? 'approved' : 'rejected'} as ${config.user}; task ${taskId} is now ${answer.state}`);
      });
    };

  program
    .command('approve')
    .description('approve the gate a task waits at')
    .argument('<taskId>')
    .option('--comment <text>', 'a note kept with the decision')
    .option('--sha <commit>', "the commit you approve (7 or more hex digits); at the deploy gate it must be the branch's head")
    .addOption(gateOption)
    .option('--json', 'print JSON')
    .action(decide('approve'));

  program
    .command('reject')
    .description('reject the gate a task waits at; the reason goes back to the agent that produced the work')
    .argument('<taskId>')
    .requiredOption('--reason <text>', 'why, for the planner or coder to act on')
    .addOption(gateOption)
    .option('--json', 'print JSON')
    .action(decide('reject'));

  program
    .command('cancel')
    .description('cancel a task')
    .argument('<taskId>')
    .requiredOption('--reason <text>', 'why')
    .action(async (taskId: string, o: { reason: string }, command: Command) => {
      await withClient(command, async (client, config) => {
        await client.cancel(taskId, config.user, o.reason);
        console.log(`cancel of ${taskId} sent`);
      });
    });

  program
    .command('retry')
    .description('run the stage that failed again')
    .argument('<taskId>')
    .action(async (taskId: string, _o: unknown, command: Command) => {
      await withClient(command, async (client, config) => {
        const record = await client.get(taskId);
        if (record.state !== 'failed') {
          throw new StagegateError('TASK_NOT_AT_GATE', `task ${taskId} is ${record.state}, not failed; nothing to retry`, { taskId });
        }
        await client.retry(taskId, config.user);
        console.log(`retry of ${taskId} sent`);
      });
    });
}
