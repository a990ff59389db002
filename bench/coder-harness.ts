/**
 * The coder's agent loop over a scripted 40-turn session (coder-session.ts) with realistic tool
 * outputs, against the scripted model streaming each turn from a child process. Measures:
 *
 * - prefix caching: the share of all input tokens sent that are an exact prefix of the previous
 *   request (what a provider's prefix cache can serve), against the best any harness could do
 *   for the same session (everything but the newest turn; right after a compaction, only
 *   instructions, tools and task message); with the default context window, and with a small
 *   one that forces compactions;
 * - the harness's own time per turn: the CPU time of the process running the loop (loop,
 *   request encoding, stream decoding, bookkeeping — everything but the model, which runs in a
 *   child process, and the tools, which are canned here), p50 and p99; with its event-loop busy
 *   time beside it, which also counts time the process waited for a CPU on a loaded machine.
 *
 * Runs as a suite of `npm run bench`, or alone: `tsx bench/coder-harness.ts`.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { fork, type ChildProcess } from 'node:child_process';
import { CoderConfig, ModelConfig } from '../core/config.js';
import { createLogger } from '../core/log.js';
import { createTurnClient } from '../core/model/turn.js';
import { renderTaskMessage, runCoderLoop, type TurnStats } from '../agents/coder/harness/index.js';
import { toolDefinitions } from '../agents/coder/harness/tools/index.js';
import { ModelProcessMessage, SESSION_TURNS, toolOutput, type PrefixReport } from './coder-session.js';
import { roundMs, roundSummary, summarize } from './stats.js';
import { formatMs, type Row, type Suite, type SuiteReport, type TargetCheck } from './suite.js';

const WARM_UP_SESSIONS = 2;
const MEASURED_SESSIONS = 5;
/** Small enough that the session passes `compactAt` of it more than once. */
const SMALL_WINDOW_TOKENS = 40_000;
const PREFIX_TARGET = 0.99;
const OVERHEAD_P50_TARGET_MS = 5;

interface SessionResult {
  turns: number;
  compactions: number;
  /** CPU milliseconds of this process per turn, tools excluded. */
  harnessMs: number[];
  /** Event-loop busy milliseconds per turn, tools excluded. */
  busyMs: number[];
  /** The loop's own bookkeeping per turn (outside the model call and the tools). */
  loopMs: number[];
  prefix: PrefixReport;
}

export const coderHarnessSuite: Suite = {
  id: 'coderHarness',
  title: `coder harness, scripted ${SESSION_TURNS}-turn session`,
  run: () => measureCoderHarness(),
};

export async function measureCoderHarness(): Promise<SuiteReport> {
  for (let i = 0; i < WARM_UP_SESSIONS; i++) await runSession(CoderConfig.parse({}).contextWindowTokens);
  const sessions: SessionResult[] = [];
  for (let i = 0; i < MEASURED_SESSIONS; i++) sessions.push(await runSession(CoderConfig.parse({}).contextWindowTokens));
  const compacting = await runSession(SMALL_WINDOW_TOKENS);

  const harness = summarize(sessions.flatMap((s) => s.harnessMs));
  const busy = summarize(sessions.flatMap((s) => s.busyMs));
  const loop = summarize(sessions.flatMap((s) => s.loopMs));
  const full = sessions[0]?.prefix as PrefixReport;
  const shareOf = (r: PrefixReport) => ({ achieved: r.prefixTokens / r.inputTokens, best: r.bestPrefixTokens / r.inputTokens, ofBest: r.prefixTokens / r.bestPrefixTokens });
  const plain = shareOf(full);
  const small = shareOf(compacting.prefix);
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

  const rows: Row[] = [
    { metric: 'session', value: `${SESSION_TURNS} turns, ${full.requests} requests, ${Math.round(full.inputTokens / 1000)}k input tokens sent` },
    { metric: 'prefix-cacheable share', value: `${pct(plain.achieved)} of input tokens (best possible ${pct(plain.best)}): ${pct(plain.ofBest)} of best` },
    { metric: 'simulated cache hits', value: `${pct(full.cachedTokens / full.inputTokens)} (64-token blocks)` },
    {
      metric: `with compaction (${SMALL_WINDOW_TOKENS / 1000}k window)`,
      value: `${compacting.compactions} compactions; ${pct(small.achieved)} cacheable (best ${pct(small.best)}): ${pct(small.ofBest)} of best`,
    },
    { metric: 'harness CPU time per turn', value: `p50 ${formatMs(harness.p50)}, p99 ${formatMs(harness.p99)} (${harness.count} turns, tools excluded)` },
    { metric: 'event loop busy per turn', value: `p50 ${formatMs(busy.p50)}, p99 ${formatMs(busy.p99)} (wall time, includes waiting for a CPU)` },
    { metric: 'loop bookkeeping per turn', value: `p50 ${formatMs(loop.p50)}, p99 ${formatMs(loop.p99)} (outside the model call)` },
  ];
  const targets: TargetCheck[] = [
    {
      target: `cacheable prefix share >= ${100 * PREFIX_TARGET}% of the best possible`,
      met: plain.ofBest >= PREFIX_TARGET && small.ofBest >= PREFIX_TARGET,
      detail: `${pct(plain.ofBest)} without compaction, ${pct(small.ofBest)} with ${compacting.compactions}`,
    },
    { target: `harness overhead p50 < ${OVERHEAD_P50_TARGET_MS} ms per turn`, met: harness.p50 < OVERHEAD_P50_TARGET_MS, detail: `p50 ${formatMs(harness.p50)}, p99 ${formatMs(harness.p99)}` },
  ];
  return {
    rows,
    notes: [
      'prefix share: the characters of each request that are an exact prefix of the previous request (instructions + tools + input, serialised as the scripted model does), as tokens, over all input tokens sent; best possible: the whole previous request, or after a compaction only instructions + tools + task message.',
      'harness time: CPU time per turn of the process running the loop (request encoding, stream decoding, bookkeeping), tools excluded; the scripted model runs in a child process.',
    ],
    targets,
    figures: { coderHarnessP50Ms: roundMs(harness.p50), coderHarnessP99Ms: roundMs(harness.p99), coderPrefixShareOfBest: plain.ofBest },
    details: {
      prefix: { default: full, compacting: compacting.prefix },
      harnessCpuMs: roundSummary(harness),
      eventLoopBusyMs: roundSummary(busy),
      loopMs: roundSummary(loop),
    },
  };
}

async function runSession(contextWindowTokens: number): Promise<SessionResult> {
  const model = await startModelProcess();
  try {
    const log = createLogger({ level: 'silent' });
    const config = CoderConfig.parse({ contextWindowTokens, maxTurns: 200 });
    const harnessMs: number[] = [];
    const busyMs: number[] = [];
    const loopMs: number[] = [];
    let elu = performance.eventLoopUtilization();
    let cpu = process.cpuUsage();
    const onTurn = (stats: TurnStats) => {
      const used = process.cpuUsage(cpu);
      const busy = performance.eventLoopUtilization(elu);
      cpu = process.cpuUsage();
      elu = performance.eventLoopUtilization();
      harnessMs.push(Math.max(0, (used.user + used.system) / 1000 - stats.toolMs));
      busyMs.push(Math.max(0, busy.active - stats.toolMs));
      loopMs.push(Math.max(0, stats.totalMs - stats.modelMs - stats.toolMs));
    };
    const result = await runCoderLoop({
      taskId: 't-bench',
      turnClient: createTurnClient(ModelConfig.parse({ apiKey: 'bench', baseUrl: model.url, maxRetries: 0 }), 'coder', log),
      instructions: PROMPT,
      tools: toolDefinitions(),
      taskMessage: TASK_MESSAGE,
      executeTool: async (call) =>
        call.name === 'finish'
          ? { isError: false, output: 'finished', control: { kind: 'finish', summary: 'done' } }
          : { isError: false, output: toolOutput(call.name, call.call_id) },
      verifyFinish: async () => ({ accepted: true }),
      limits: config,
      price: undefined,
      compaction: config,
      progress: async () => undefined,
      log,
      onTurn,
    });
    if (result.kind !== 'finished' || result.turns !== SESSION_TURNS) throw new Error(`the scripted session ended ${result.kind} after ${result.turns} turns`);
    return { turns: result.turns, compactions: result.compactions, harnessMs, busyMs, loopMs, prefix: await model.report() };
  } finally {
    await model.stop();
  }
}

const PROMPT = readFileSync(fileURLToPath(new URL('../agents/coder/prompt.md', import.meta.url)), 'utf8');

const TASK_MESSAGE = renderTaskMessage({
  job: {
    type: 'implement.request',
    taskId: 't-bench',
    msgId: 't-bench:implement:1:dispatch',
    sentAt: '2026-01-01T00:00:00.000Z',
    task: { repo: '/srv/app', title: 'Retry a failed step three times', body: 'Steps give up after two attempts; the spec says three.', base: 'main', submittedBy: 'bench' },
    attempt: 1,
    plan: {
      summary: 'Make the step retry three times and test it.',
      steps: [{ title: 'Fix the count', detail: 'in src/orchestrator/step.ts' }, { title: 'Test it', detail: 'both paths' }],
      filesToTouch: ['src/orchestrator/step.ts', 'test/step.test.ts'],
      risks: [],
      acceptanceChecks: ['npm test passes'],
    },
    branch: 'stagegate/t-bench',
    round: 1,
    reviewComments: [],
    feedback: [],
    approvedCommands: [],
  },
  repoView: `## Files (87)\n${Array.from({ length: 87 }, (_, i) => `src/module-${i}/index.ts`).join('\n')}\n\n## src/orchestrator/step.ts\n\`\`\`\n${'export function step() {\n  return attempts;\n}\n'.repeat(120)}\`\`\``,
  instructions: '',
  commands: { test: 'npm test' },
  branchLog: '',
});

interface ModelProcess {
  url: string;
  report(): Promise<PrefixReport>;
  stop(): Promise<void>;
}

/** Starts coder-harness-model.ts as a child process (with tsx's loader) and waits for its URL. */
function startModelProcess(): Promise<ModelProcess> {
  const child = fork(fileURLToPath(new URL('./coder-harness-model.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return nextMessage(child, 'ready').then((ready) => ({
    url: ready.type === 'ready' ? ready.url : '',
    report: async () => {
      const reply = nextMessage(child, 'report');
      child.send('report');
      const message = await reply;
      if (message.type !== 'report') throw new Error('the scripted model process sent no report');
      return message.report;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill();
      await exited;
    },
  }));
}

function nextMessage(child: ChildProcess, type: ModelProcessMessage['type']): Promise<ModelProcessMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (raw: unknown) => {
      const message = ModelProcessMessage.safeParse(raw);
      if (!message.success || message.data.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message.data);
    };
    const onExit = (code: number | null) => reject(new Error(`the scripted model process exited (${code}) before sending '${type}'`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  measureCoderHarness().then(
    (report) => {
      for (const row of report.rows) process.stdout.write(`  ${row.metric.padEnd(34)}  ${row.value}\n`);
      for (const note of report.notes ?? []) process.stdout.write(`  note: ${note}\n`);
      for (const t of report.targets) process.stdout.write(`  [${t.met ? 'met' : 'MISSED'}] ${t.target}: ${t.detail}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`coder-harness bench could not run: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
