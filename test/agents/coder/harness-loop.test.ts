/**
 * The coder's agent loop against the scripted model, streamed, with tools faked: what it sends
 * (a cache-stable prefix, reasoning carried forward), how limits end it, and compaction. The
 * worker's tests (coder-worker.test.ts) run the real tools on a real repository.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Usage } from '../../../core/bus/messages.js';
import { CoderConfig, ModelConfig } from '../../../core/config.js';
import { createLogger } from '../../../core/log.js';
import type { FunctionCall } from '../../../core/model/conversation.js';
import { createTurnClient } from '../../../core/model/turn.js';
import { startScriptedModelServer, type AnswerFn, type RecordedRequest, type ScriptedAnswer, type ScriptedModelServer } from '../../../core/scripted-model/index.js';
import { COMPACTION_REQUEST, SUMMARY_PREAMBLE } from '../../../agents/coder/harness/compaction.js';
import { runCoderLoop, type CoderLoopInput } from '../../../agents/coder/harness/loop.js';
import type { ToolDefinition, ToolOutcome } from '../../../agents/coder/harness/tool-types.js';

let server: ScriptedModelServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const tools: ToolDefinition[] = ['read_file', 'shell', 'finish'].map((name) => ({
  type: 'function',
  name,
  description: `The ${name} tool.`,
  parameters: { type: 'object', properties: {}, additionalProperties: false },
  strict: true,
}));

function functionCall(id: string, name: string, args: Record<string, unknown> = {}) {
  return { type: 'function_call', id: `fc_${id}`, call_id: `call_${id}`, name, arguments: JSON.stringify(args), status: 'completed' };
}

function reasoning(id: string) {
  return { type: 'reasoning', id: `rs_${id}`, summary: [{ type: 'summary_text', text: `thinking ${id}` }], encrypted_content: `opaque-${id}` };
}

/** A model that reads a file each turn and finishes at turn `finishAt`; it answers a compaction request with a note. */
function workingModel(finishAt = Infinity): AnswerFn {
  let turn = 0;
  return (request) => {
    if (request.body.tool_choice === 'none') return { text: `Handover: read ${turn} files so far; next, read one more and finish.` };
    turn += 1;
    if (turn >= finishAt) return { output: [functionCall(`${turn}`, 'finish', { summary: 'done' })] };
    return { output: [reasoning(`${turn}`), functionCall(`${turn}`, 'read_file', { path: `src/file-${turn}.js` })] };
  };
}

/** Tools that answer like the real ones: a page of a file, a test run, finish. */
async function fakeTool(call: FunctionCall): Promise<ToolOutcome> {
  if (call.name === 'finish') return { isError: false, output: 'finished', control: { kind: 'finish', summary: 'done' } };
  const lines = Array.from({ length: 40 }, (_, i) => `${i + 1}\texport const value${i} = compute(${i}); // ${call.call_id}`);
  return { isError: false, output: `src/file.js: lines 1-40 of 40\n${lines.join('\n')}` };
}

interface Run {
  model: ScriptedModelServer;
  input: CoderLoopInput;
  progress: Array<{ message: string; usage?: Usage }>;
  logLines: Array<Record<string, unknown>>;
}

async function setup(answers: ScriptedAnswer[], overrides: Partial<CoderLoopInput> = {}, coder: Partial<CoderConfig> = {}, wireApi: 'responses' | 'chat' = 'responses'): Promise<Run> {
  const model = await startScriptedModelServer({ script: { answers: {} } });
  server = model;
  model.enqueue('coder', ...answers);
  const logLines: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  });
  const config = CoderConfig.parse(coder);
  const progress: Run['progress'] = [];
  const input: CoderLoopInput = {
    taskId: 't-loop',
    turnClient: createTurnClient(ModelConfig.parse({ apiKey: 'k', baseUrl: model.url, maxRetries: 0, wireApi }), 'coder', log),
    instructions: 'You are the coder. Work with the tools, then call finish.',
    tools,
    taskMessage: '# Task\n\nAdd slugify.\n\n# Repository\n\nsrc/textkit.js',
    executeTool: fakeTool,
    verifyFinish: async () => ({ accepted: true }),
    limits: config,
    price: undefined,
    compaction: config,
    progress: async (message, usage) => {
      progress.push(usage === undefined ? { message } : { message, usage });
    },
    log,
    ...overrides,
  };
  return { model, input, progress, logLines };
}

const isCompactionRequest = (r: RecordedRequest) => r.body.tool_choice === 'none';

/** The prefix property: same instructions and tools every time; each input extends the one before, except right after a compaction. */
function expectCacheStablePrefix(requests: readonly RecordedRequest[]) {
  const first = requests[0];
  for (const [i, request] of requests.entries()) {
    expect(request.body.instructions, `request ${i + 1} instructions`).toBe(first?.body.instructions);
    expect(JSON.stringify(request.body.tools), `request ${i + 1} tools`).toBe(JSON.stringify(first?.body.tools));
    const previous = requests[i - 1];
    if (previous === undefined) continue;
    const before = previous.body.input as unknown[];
    const now = request.body.input as unknown[];
    if (isCompactionRequest(previous)) {
      expect(now[0], `request ${i + 1} keeps the task message after a compaction`).toEqual(before[0]);
      continue;
    }
    expect(now.length, `request ${i + 1} appends`).toBeGreaterThan(before.length);
    expect(JSON.stringify(now.slice(0, before.length)), `request ${i + 1} starts with request ${i}'s input`).toBe(JSON.stringify(before));
  }
}

describe('coder loop', () => {
  it('sends requests whose input starts with the previous request input, carrying reasoning forward', async () => {
    const answer = workingModel(4);
    const { model, input, progress } = await setup([answer, answer, answer, answer]);

    const result = await runCoderLoop(input);

    expect(result).toMatchObject({ kind: 'finished', summary: 'done', turns: 4, finishAttempts: 1, compactions: 0 });
    expect(model.requests).toHaveLength(4);
    expectCacheStablePrefix(model.requests);
    // The reasoning item of turn 1, with its encrypted content, is in every later request.
    const reasoningOfTurn1 = { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'thinking 1' }], encrypted_content: 'opaque-1' };
    for (const request of model.requests.slice(1)) expect(request.body.input).toContainEqual(reasoningOfTurn1);
    expect(progress.map((p) => p.message)).toEqual([
      'turn 1: read_file src/file-1.js → ok',
      'turn 2: read_file src/file-2.js → ok',
      'turn 3: read_file src/file-3.js → ok',
      'turn 4: finish → ok',
    ]);
    // Each turn reports its own call's usage; the cache serves the repeated prefix.
    expect(progress.every((p) => p.usage?.calls === 1)).toBe(true);
    expect(progress.at(-1)?.usage?.cachedTokens).toBeGreaterThan(0);
    expect(result.usage.calls).toBe(4);
  });

  it('answers a reply without a tool call with a nudge, and a refused finish with the reason', async () => {
    const verdicts = [{ accepted: false as const, output: 'The tests failed, so the task is not finished: exit code 1' }, { accepted: true as const }];
    const { model, input, progress } = await setup(
      [{ text: 'I think I am done.' }, { output: [functionCall('a', 'finish', { summary: 'x' })] }, { output: [functionCall('b', 'finish', { summary: 'y' })] }],
      { verifyFinish: async () => verdicts.shift() ?? { accepted: true } },
    );

    const result = await runCoderLoop(input);

    expect(result).toMatchObject({ kind: 'finished', turns: 3, finishAttempts: 2, lastAssistantText: 'I think I am done.' });
    expect(model.requests[1]?.body.input).toContainEqual(expect.objectContaining({ type: 'message', role: 'user', content: expect.stringMatching(/without calling a tool/) }));
    expect(model.requests[2]?.body.input).toContainEqual({ type: 'function_call_output', call_id: 'call_a', output: 'The tests failed, so the task is not finished: exit code 1' });
    expect(progress.map((p) => p.message)).toEqual(['turn 1: no tool call', 'turn 2: finish → ok; finish refused: The tests failed, so the task is not finished: exit code 1', 'turn 3: finish → ok']);
    expectCacheStablePrefix(model.requests);
  });

  it('stops at the turn limit with the reason, without asking the model again', async () => {
    const model = workingModel();
    const { model: server, input } = await setup([model, model, model], {}, { maxTurns: 2 });

    const result = await runCoderLoop(input);

    expect(result).toMatchObject({ kind: 'limit', reason: 'the turn limit (2 turns)', turns: 2 });
    expect(server.requests).toHaveLength(2);
    expect(server.remaining('coder')).toBe(1);
  });

  it('stops at the token limit once the calls so far reach it', async () => {
    const model = workingModel();
    const { input } = await setup([model, model, model], {}, { maxTokens: 50 });

    const result = await runCoderLoop(input);

    expect(result).toMatchObject({ kind: 'limit', turns: 1 });
    expect(result.kind === 'limit' && result.reason).toMatch(/^the token limit \(50 tokens; \d+ used\)$/);
  });

  it('stops at the cost limit, pricing cached input at its own rate', async () => {
    const model = workingModel();
    const price = { inputPerMTok: 1_000, cachedInputPerMTok: 100, outputPerMTok: 4_000 };
    const { input } = await setup([model, model, model], { price }, { maxCostUsd: 0.5 });

    const result = await runCoderLoop(input);

    expect(result.kind).toBe('limit');
    expect(result.kind === 'limit' && result.reason).toMatch(/^the cost limit \(\$0\.50; \$\d+\.\d\d spent\)$/);
    expect(result.turns).toBeLessThan(3);
  });

  it('stops at the wall-clock limit by the injected clock', async () => {
    let now = 1_000_000;
    const model = workingModel();
    const slowTool = async (call: FunctionCall) => {
      now += 40_000;
      return fakeTool(call);
    };
    const { input } = await setup([model, model, model], { clock: () => now, executeTool: slowTool }, { wallClockMs: 60_000 });

    const result = await runCoderLoop(input);

    expect(result).toMatchObject({ kind: 'limit', reason: 'the wall-clock limit (1 min; 1.3 min elapsed)', turns: 2 });
  });

  it('ends at once when a call needs approval, the calls after it not run', async () => {
    const ran: string[] = [];
    const { input } = await setup([{ output: [functionCall('a', 'shell', { command: 'npm install left-pad' }), functionCall('b', 'read_file')] }], {
      executeTool: async (call) => {
        ran.push(call.name);
        return { isError: false, output: 'needs approval', control: { kind: 'needs-approval', command: 'npm install left-pad', pattern: 'npm install' } };
      },
    });

    const result = await runCoderLoop(input);

    expect(result).toMatchObject({ kind: 'needs-approval', command: 'npm install left-pad', pattern: 'npm install', turns: 1 });
    expect(ran).toEqual(['shell']);
  });

  it('compacts the conversation before it passes the threshold, keeping every request under it, and logs the sizes', async () => {
    const model = workingModel(14);
    const settings = { contextWindowTokens: 6_000, compactAt: 0.5, keepRecentTurns: 2 };
    const { model: server, input, progress, logLines } = await setup(Array(20).fill(model), {}, settings);

    const result = await runCoderLoop(input);

    expect(result).toMatchObject({ kind: 'finished', turns: 14 });
    expect(result.compactions).toBeGreaterThanOrEqual(2);
    const compactionRequests = server.requests.filter(isCompactionRequest);
    expect(compactionRequests).toHaveLength(result.compactions);
    // The summary request is the conversation plus one question, so it shares the prefix too.
    for (const request of compactionRequests) expect(request.body.input).toContainEqual({ type: 'message', role: 'user', content: COMPACTION_REQUEST });
    expectCacheStablePrefix(server.requests);

    const threshold = settings.contextWindowTokens * settings.compactAt;
    const turns = progress.filter((p) => p.message.startsWith('turn '));
    expect(turns).toHaveLength(14);
    for (const turn of turns) expect(turn.usage?.inputTokens, turn.message).toBeLessThan(threshold);
    // Right after a compaction: task message, the handover note, then recent turns verbatim.
    const afterCompaction = server.requests[server.requests.indexOf(compactionRequests[0] as RecordedRequest) + 1];
    const [task, summary] = afterCompaction?.body.input as Array<{ content?: string }>;
    expect(task?.content).toContain('# Task');
    expect(summary?.content).toMatch(new RegExp(`^${SUMMARY_PREAMBLE}\\n\\nHandover: read \\d+ files so far`));

    const logged = logLines.filter((l) => l.msg === 'conversation compacted');
    expect(logged).toHaveLength(result.compactions);
    for (const line of logged) {
      expect(line.beforeTokens).toBeGreaterThanOrEqual(threshold);
      expect(line.afterTokens).toBeLessThan(threshold);
      expect(line.keptTurns).toBeLessThanOrEqual(2);
    }
    expect(progress.some((p) => /^compacted the conversation: ~\d+ → ~\d+ tokens/.test(p.message))).toBe(true);
  });

  it('runs the same session over Chat Completions', async () => {
    const model = workingModel(3);
    const { model: server, input } = await setup([model, model, model], {}, {}, 'chat');

    const result = await runCoderLoop(input);

    expect(result).toMatchObject({ kind: 'finished', turns: 3 });
    expect(server.requests.map((r) => r.path)).toEqual(Array(3).fill('/v1/chat/completions'));
    const messages = server.requests[2]?.body.messages;
    expect(messages?.slice(0, (server.requests[1]?.body.messages ?? []).length)).toEqual(server.requests[1]?.body.messages);
    expect(messages).toContainEqual({ role: 'tool', tool_call_id: 'call_1', content: expect.stringContaining('src/file.js: lines 1-40') });
  });
});
