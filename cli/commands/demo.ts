/**
 * `stagegate demo`: everything on this machine, nothing from outside. A sample repository, a
 * nats-server of its own (unless NATS_URL is set), the scripted model server, the orchestrator
 * and one worker process per role; one task submitted and followed to the end.
 */
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { AgentRole } from '../../core/bus/messages.js';
import { connectBus } from '../../core/bus/connect.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { StagegateError } from '../../core/errors.js';
import { runCommand } from '../../core/exec/run-command.js';
import { git } from '../../core/git/git.js';
import { startLocalNatsServer, type LocalNatsServer } from '../../core/nats/local-server.js';
import type { GatePolicies } from '../../core/policy.js';
import { startScriptedModelServer } from '../../core/scripted-model/index.js';
import type { TaskRecord } from '../../core/task-record.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { DEMO_SCRIPT } from '../demo/demo-script.js';
import { followTask } from '../demo/follow-task.js';
import { SAMPLE_TASK, createSampleRepo } from '../demo/sample-repo.js';
import { formatDuration, formatTokens, stageDurationMs } from '../format.js';
import { createProcessGroup } from '../process-group.js';
import { configOf } from '../runtime.js';
import { SYSTEM_TOOLS, ensureSystemTools } from '../system-tools.js';

interface DemoOptions {
  interactive?: boolean;
  json?: boolean;
  keep?: boolean;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run one task through plan → implement → review → deploy on a sample repository, all on this machine')
    .option('--interactive', 'decide the two gates yourself at the terminal instead of the auto-approve policy')
    .option('--json', 'print JSON lines; the last one is the summary')
    .option('--keep', 'keep the temporary directory (sample repo, work trees, logs)')
    .action(async (options: DemoOptions, command: Command) => {
      const config = configOf(command);
      const say = (text: string) => {
        if (!options.json) console.log(text);
      };
      const external = process.env.NATS_URL;
      const needed = SYSTEM_TOOLS.filter(
        (t) => t.command === 'git' || (t.command === 'nats-server' && external === undefined) || (t.command === 'bwrap' && !config.coder.allowUnsandboxed),
      );
      const missing = ensureSystemTools(needed, true).filter((r) => r.status === 'missing');
      if (missing.length > 0) throw new StagegateError('TOOL_MISSING', missing.map((m) => m.message).join('; '));

      const root = await mkdtemp(join(tmpdir(), 'stagegate-demo-'));
      const cleanup: Array<() => Promise<void>> = [];
      let succeeded = false;
      try {
        const repo = await createSampleRepo(join(root, 'textkit'));
        let nats: LocalNatsServer | undefined;
        if (external === undefined) {
          nats = await startLocalNatsServer({ storeDir: join(root, 'nats') });
          cleanup.push(() => nats?.stop() ?? Promise.resolve());
        }
        const natsUrl = external ?? (nats as LocalNatsServer).url;
        const model = await startScriptedModelServer({ script: DEMO_SCRIPT });
        cleanup.push(() => model.close());

        await mkdir(join(root, 'logs'));
        const logFile = join(root, 'logs', 'stagegate.log');
        const group = createProcessGroup({
          logFile,
          env: {
            ...process.env,
            NATS_URL: natsUrl,
            OPENAI_BASE_URL: model.url,
            OPENAI_API_KEY: 'scripted-model-needs-no-key',
            STAGEGATE_WORK_DIR: join(root, 'work'),
          },
        });
        cleanup.push(() => group.stopAll());

        say(`Stagegate demo\n  repository: ${repo} (sample Node project; its test asks for a missing slugify())`);
        say(`  NATS:       ${natsUrl}${nats === undefined ? '' : ' (a nats-server of the demo\'s own, JetStream in a temp store)'}`);
        say(`  model:      SCRIPTED model server at ${model.url}: canned answers, offline, no tokens spent.`);
        say('              For a real model: set OPENAI_API_KEY (and OPENAI_BASE_URL for another endpoint), run `stagegate up`, then `stagegate submit`.');
        say(`  gates:      ${options.interactive ? `you decide at this terminal (as ${config.user})` : 'auto-approve policy (demo setting; real use keeps humans at the gates)'}`);
        say(`  logs:       ${logFile}\n`);

        await group.start('orchestrator', ['orchestrator']);
        for (const role of AgentRole.options) await group.start(role, ['worker', role]);
        say(`  started:    ${group.children.map((c) => `${c.name} (pid ${c.process.pid})`).join(', ')}\n`);
        if (options.json) {
          const processes = group.children.map((c) => ({ name: c.name, pid: c.process.pid }));
          console.log(JSON.stringify({ type: 'demo.started', repo, natsUrl, modelUrl: model.url, scriptedModel: true, processes }));
        }

        const nc = await connectBus(natsUrl, 'stagegate-demo');
        cleanup.push(() => nc.drain());
        await ensureTopology(nc, { jobAckWaitMs: config.jobs.ackWaitMs, jobMaxDeliveries: config.jobs.maxDeliveries, updateExisting: false });
        const client = await createTaskClient(nc);

        const gate = { approvers: [config.user], required: 1, autoApprove: !options.interactive };
        const policies: GatePolicies = { plan: gate, review: gate, deploy: gate };
        const startedAt = Date.now();
        const taskId = await client.submit({
          spec: { repo, title: SAMPLE_TASK.title, body: SAMPLE_TASK.body, base: 'main', submittedBy: config.user },
          policies,
          maxReviewRounds: config.maxReviewRounds,
        });
        say(`task ${taskId}: ${SAMPLE_TASK.title}`);

        const abort = new AbortController();
        const timer = setTimeout(() => abort.abort(), 5 * 60_000);
        const onSigint = () => abort.abort();
        process.once('SIGINT', onSigint);
        const finalState = await followTask({
          client,
          taskId,
          json: options.json === true,
          startedAt,
          signal: abort.signal,
          ...(options.interactive ? { onGate: (g: string) => askAtGate(client, taskId, g, config.user) } : {}),
        });
        clearTimeout(timer);
        process.off('SIGINT', onSigint);

        const record = await client.get(taskId);
        const tests = finalState === 'done' ? await runCommand('npm test', { cwd: repo, timeoutMs: 120_000 }) : undefined;
        const head = (await git(['rev-parse', '--short', 'HEAD'], { cwd: repo })).trim();
        const summary = summarise(record, tests?.exitCode === 0, head);
        if (options.json) console.log(JSON.stringify(summary));
        else printSummary(record, summary);
        succeeded = finalState === 'done' && tests?.exitCode === 0;
      } finally {
        for (const step of cleanup.reverse()) await step().catch(() => undefined);
        if (options.keep || !succeeded) say(`\nkept ${root} (sample repo, work trees, logs)`);
        else await rm(root, { recursive: true, force: true });
      }
      if (!succeeded) process.exitCode = 1;
    });
}

async function askAtGate(client: TaskClient, taskId: string, gate: string, user: string): Promise<void> {
  const record = await client.get(taskId);
  if (gate === 'plan' && record.context.plan !== null) {
    console.log(`\n  plan: ${record.context.plan.summary}\n${record.context.plan.steps.map((s, i) => `    ${i + 1}. ${s.title}: ${s.detail}`).join('\n')}`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = (await rl.question(`\n  ${gate} gate: approve? [y = approve / anything else = reject with that as the reason] `)).trim();
    const approve = /^y(es)?$/i.test(answer);
    await client.decide({ taskId, decision: approve ? 'approve' : 'reject', by: user, via: 'cli', ...(approve ? {} : { comment: answer || 'rejected at the terminal' }) });
  } finally {
    rl.close();
  }
}

function summarise(record: TaskRecord, testsPass: boolean, head: string) {
  const c = record.context;
  return {
    taskId: c.taskId,
    state: record.state,
    stages: c.stages.map((s) => ({ stage: s.stage, attempt: s.attempt, outcome: s.outcome, durationMs: stageDurationMs(s), usage: s.usage })),
    reviewRounds: c.reviewRound,
    usage: c.usage,
    target: { branch: c.spec.base, head, testsPass },
    ...(c.error === null ? {} : { error: c.error }),
  };
}

function printSummary(record: TaskRecord, summary: ReturnType<typeof summarise>) {
  console.log(`\n${record.state === 'done' ? 'done' : record.state.toUpperCase()}: task ${summary.taskId}`);
  for (const s of summary.stages) {
    console.log(`  ${s.stage.padEnd(9)} #${s.attempt}  ${(s.outcome ?? '').padEnd(17)}  ${(s.durationMs === null ? '' : formatDuration(s.durationMs)).padEnd(8)}  ${formatTokens(s.usage)}`);
  }
  console.log(`  review rounds: ${summary.reviewRounds}`);
  console.log(`  total:         ${formatTokens(summary.usage)}`);
  if (record.context.error !== null) console.log(`  error:         ${record.context.error.stage}: ${record.context.error.reason}`);
  console.log(`  ${summary.target.branch} is at ${summary.target.head}; its tests ${summary.target.testsPass ? 'pass' : 'do NOT pass'}`);
}
