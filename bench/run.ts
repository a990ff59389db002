/**
 * `npm run bench`: starts a nats-server of its own (temp store, removed afterwards), runs each
 * suite against it in turn, prints one table and writes bench/results.json. Exits non-zero only
 * when the benchmark itself could not run; a missed target is reported, not fatal.
 * Add a suite by appending it to SUITES; it receives the figures of the suites before it.
 */
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { connectBus } from '../core/bus/connect.js';
import { errorMessage } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { startTestNatsServer } from '../test/helpers/nats-server.js';
import { coderHarnessSuite } from './coder-harness.js';
import { pipelineSuite } from './pipeline.js';
import { rawFloorSuite } from './raw-floor.js';
import type { Row, Suite, SuiteReport, TargetCheck } from './suite.js';
import { surgeSuite } from './surge.js';
import { workerScalingSuite } from './worker-scaling.js';

const SUITES: Suite[] = [rawFloorSuite, pipelineSuite, coderHarnessSuite, workerScalingSuite, surgeSuite];

const RESULTS_FILE = fileURLToPath(new URL('./results.json', import.meta.url));

async function main(): Promise<number> {
  const started = performance.now();
  /** Other load on the machine skews every figure; recorded so a noisy run can be recognised. */
  const loadAtStart = loadavg().map((x) => Math.round(x * 100) / 100);
  const log = createLogger({ level: 'silent' });
  const server = await startTestNatsServer();
  const reports = new Map<string, SuiteReport>();
  const figures = new Map<string, number>();
  let failure: { suite: string; error: string } | undefined;
  let natsServer: string;
  try {
    natsServer = await readServerVersion(server.url);
    for (const suite of SUITES) {
      process.stdout.write(`running ${suite.title}...\n`);
      try {
        const report = await suite.run({ natsUrl: server.url, log, figures });
        reports.set(suite.id, report);
        for (const [name, value] of Object.entries(report.figures)) figures.set(name, value);
      } catch (err) {
        failure = { suite: suite.id, error: errorMessage(err) };
        break;
      }
    }
  } finally {
    await server.cleanup();
  }

  const targets = [...reports.values()].flatMap((r) => r.targets);
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 1e9),
    platform: `${platform()} ${release()}`,
    node: process.version,
    natsServer,
    loadAverageAtStart: loadAtStart,
  };
  process.stdout.write(`\n${renderTable(reports)}\n${renderTargets(targets)}\n`);
  process.stdout.write(
    `machine: ${machine.cpus} cpus (${machine.cpuModel}), node ${machine.node}, nats-server ${machine.natsServer}, load average at start ${loadAtStart.join(' ')}\n`,
  );

  const results = {
    date: new Date().toISOString(),
    durationS: Math.round((performance.now() - started) / 100) / 10,
    machine,
    targets,
    suites: Object.fromEntries(
      SUITES.filter((s) => reports.has(s.id)).map((s) => {
        const { rows, notes, figures: named, details } = reports.get(s.id) as SuiteReport;
        return [s.id, { title: s.title, rows, notes: notes ?? [], figures: named, ...details }];
      }),
    ),
    ...(failure === undefined ? {} : { failure }),
  };
  await writeFile(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(`results written to ${RESULTS_FILE} (${results.durationS} s)\n`);
  if (failure !== undefined) {
    process.stderr.write(`bench: suite ${failure.suite} could not run: ${failure.error}\n`);
    return 1;
  }
  return 0;
}

async function readServerVersion(url: string): Promise<string> {
  const nc = await connectBus(url, 'bench-info');
  try {
    return nc.info?.version ?? 'unknown';
  } finally {
    await nc.close();
  }
}

function renderTable(reports: ReadonlyMap<string, SuiteReport>): string {
  const sections = SUITES.flatMap((s) => {
    const report = reports.get(s.id);
    return report === undefined ? [] : [{ title: s.title, rows: report.rows, notes: report.notes ?? [] }];
  });
  const all: Row[] = sections.flatMap((s) => s.rows);
  const width = Math.max(...all.map((r) => r.metric.length), 6);
  const lines: string[] = [];
  for (const section of sections) {
    lines.push(`${section.title}`);
    lines.push(`${'-'.repeat(width + 2)}${'-'.repeat(40)}`);
    for (const row of section.rows) lines.push(`  ${row.metric.padEnd(width)}  ${row.value}`);
    for (const note of section.notes) lines.push(`  * ${note}`);
    lines.push('');
  }
  return lines.join('\n');
}

function renderTargets(targets: TargetCheck[]): string {
  const lines = ['targets'];
  for (const t of targets) lines.push(`  [${t.met ? 'met' : 'MISSED'}] ${t.target}: ${t.detail}`);
  return `${lines.join('\n')}\n`;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench could not run: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  },
);
