/**
 * A scripted 40-turn coder session with realistic sizes, the same every run: what the model
 * "says" each turn (a reasoning item with encrypted content, a short note, one or two tool
 * calls) and what each tool "returns" (numbered file pages, search hits, failing and passing
 * test runs, patch results), and the messages the model process sends back. Pure data, shared
 * by the benchmark and its model process.
 */
import { z } from 'zod';
import type { Answer, OutputItem } from '../core/scripted-model/index.js';

export const SESSION_TURNS = 40;

type Call = [name: string, args: Record<string, unknown>];

/** A small deterministic generator (LCG), so the text is varied but identical across runs. */
function random(seed: number): () => number {
  let state = (seed * 2654435761) >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const WORDS = ['const', 'value', 'return', 'await', 'request', 'config', 'result', 'items', 'export', 'function', 'index', 'parse', 'render', 'error', 'options', 'handler', 'task', 'stage', 'state', 'usage'];

function codeLine(next: () => number): string {
  const indent = '  '.repeat(Math.floor(next() * 4));
  const words = Array.from({ length: 3 + Math.floor(next() * 7) }, () => WORDS[Math.floor(next() * WORDS.length)] ?? 'x');
  return `${indent}${words.join(' ')}${next() < 0.5 ? ';' : ' {'}`;
}

function lines(seed: number, count: number): string[] {
  const next = random(seed);
  return Array.from({ length: count }, () => codeLine(next));
}

const FILES = ['src/orchestrator/step.ts', 'src/agents/coder/loop.ts', 'src/core/config.ts', 'src/core/model/client.ts', 'test/step.test.ts', 'src/cli/format.ts', 'src/core/bus/messages.ts'];

function callsOf(turn: number): Call[] {
  const file = FILES[turn % FILES.length] ?? 'src/index.ts';
  if (turn === 1) return [['update_plan', { steps: plan(0) }], ['list_files', { glob: null }]];
  if (turn === SESSION_TURNS) return [['finish', { summary: 'Fixed the retry count in the step function and added tests for both paths; npm test passes.' }]];
  if (turn <= 7) return [['read_file', { path: file, startLine: null, endLine: null }]];
  if (turn % 8 === 0) return [['update_plan', { steps: plan(Math.floor(turn / 8)) }], ['search', { pattern: `retry|attempt${turn}`, glob: 'src/**/*.ts' }]];
  switch (turn % 4) {
    case 0:
      return [['read_file', { path: file, startLine: 40, endLine: 160 }]];
    case 1:
      return [['shell', { command: ['npm', 'test'], workdir: null, timeoutMs: null }]];
    case 2:
      return [['apply_patch', { patch: patchFor(turn, file) }]];
    default:
      return [['search', { pattern: `handle${turn}\\(`, glob: null }]];
  }
}

function plan(done: number) {
  const steps = ['Read the step function and its tests', 'Reproduce the failing retry test', 'Fix the retry count', 'Add a test for the retry path', 'Run the whole suite'];
  return steps.map((step, i) => ({ step, status: i < done ? 'completed' : i === done ? 'in_progress' : 'pending' }));
}

function patchFor(turn: number, file: string): string {
  const body = lines(turn * 7, 24);
  const context = body.slice(0, 3).map((l) => ` ${l}`);
  const added = body.slice(3, 18).map((l) => `+${l}`);
  return ['*** Begin Patch', `*** Update File: ${file}`, `@@ ${body[0] ?? ''}`, ...context, '-  return attempts;', ...added, ...body.slice(18, 21).map((l) => ` ${l}`), '*** End Patch'].join('\n');
}

/** The model's reply for one turn, as the scripted server serves it. */
export function modelTurn(turn: number): Answer {
  const next = random(turn * 31);
  const note = `Turn ${turn}: ${lines(turn * 13, 2).join(' ').trim()}`;
  const encrypted = Array.from({ length: 1_400 }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'[Math.floor(next() * 64)]).join('');
  const output: OutputItem[] = [
    { type: 'reasoning', id: `rs_${turn}`, summary: [{ type: 'summary_text', text: note }], encrypted_content: `gAAAAA${encrypted}` },
    { type: 'message', id: `msg_${turn}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: note, annotations: [] }] },
    ...callsOf(turn).map(([name, args], i): OutputItem => ({
      type: 'function_call',
      id: `fc_${turn}_${i}`,
      call_id: `call_${turn}_${i}`,
      name,
      arguments: JSON.stringify(args),
      status: 'completed',
    })),
  ];
  return { output };
}

/** The handover note the model writes when the harness compacts the conversation. */
export function compactionNote(turn: number): Answer {
  return { text: `Handover after turn ${turn}.\n${lines(turn * 17, 30).join('\n')}` };
}

/** What a tool call returns in this session: realistic sizes and shapes, no I/O. */
export function toolOutput(name: string, callId: string): string {
  const turn = Number(/^call_(\d+)_/.exec(callId)?.[1] ?? 0);
  switch (name) {
    case 'list_files':
      return [...FILES, ...Array.from({ length: 80 }, (_, i) => `src/module-${i}/index.ts`)].join('\n');
    case 'read_file': {
      const count = 120 + ((turn * 53) % 240);
      return [`${FILES[turn % FILES.length]}: lines 1-${count} of ${count}`, ...lines(turn, count).map((l, i) => `${String(i + 1).padStart(3)}\t${l}`)].join('\n');
    }
    case 'search':
      return lines(turn * 3, 30)
        .map((l, i) => `src/module-${i}/index.ts:${(i * 37) % 400}: ${l.trim()}`)
        .join('\n');
    case 'shell': {
      const failing = turn < SESSION_TURNS - 6;
      const log = lines(turn * 5, failing ? 90 : 30).map((l) => `    ${l}`);
      return failing
        ? ['exit code 1', '> app@1.0.0 test', '> node --test', '', `not ok ${turn} - retries the step ${turn % 3} times`, '  ---', '  expected: 3', '  actual: 2', ...log, '# tests 48', '# pass 47', '# fail 1'].join('\n')
        : ['exit code 0', '> app@1.0.0 test', '> node --test', ...log, '# tests 49', '# pass 49', '# fail 0'].join('\n');
    }
    case 'apply_patch':
      return `patch applied:\nM ${FILES[turn % FILES.length]}`;
    case 'update_plan':
      return 'plan updated';
    default:
      return 'ok';
  }
}

// ---- what the model process (coder-harness-model.ts) reports ----

const count = z.number().int().nonnegative();

export const PrefixReport = z.object({
  requests: count,
  compactionRequests: count,
  /** Tokens of every request sent (characters / 4, as the scripted model counts them). */
  inputTokens: count,
  /** Tokens of each request that are an exact prefix of the request before it. */
  prefixTokens: count,
  /** The most any harness could have shared with the request before, given the same session. */
  bestPrefixTokens: count,
  /** The scripted model's simulated cache hits (64-token blocks), for comparison. */
  cachedTokens: count,
});
export type PrefixReport = z.infer<typeof PrefixReport>;

/** What the model process sends its parent. */
export const ModelProcessMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), url: z.string() }),
  z.object({ type: z.literal('report'), report: PrefixReport }),
]);
export type ModelProcessMessage = z.infer<typeof ModelProcessMessage>;
