import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStagegateError } from '../../core/errors.js';
import {
  RecordedRequest,
  startScriptedModelServer,
  type Script,
  type ScriptedModelServer,
} from '../../core/scripted-model/index.js';

let server: ScriptedModelServer | undefined;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'scripted-model-'));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function start(script: Script, record?: string): Promise<{ model: ScriptedModelServer; client: OpenAI }> {
  const model = await startScriptedModelServer({ script, record });
  server = model;
  return { model, client: new OpenAI({ apiKey: 'sk-test-secret', baseURL: model.url, maxRetries: 0 }) };
}

const asRole = (role: string, taskId = 't-1') => ({
  headers: { 'x-stagegate-role': role, 'x-stagegate-task': taskId },
});

describe('scripted model server', () => {
  it('serves each role its answers in order', async () => {
    const { client } = await start({
      answers: { planner: [{ json: { n: 1 } }, { text: 'second' }], coder: [{ json: 'code' }] },
    });

    const first = await client.responses.create({ model: 'm', input: 'a' }, asRole('planner'));
    const coder = await client.responses.create({ model: 'm', input: 'b' }, asRole('coder'));
    const second = await client.responses.create({ model: 'm', input: 'c' }, asRole('planner'));

    expect(first.output_text).toBe('{"n":1}');
    expect(coder.output_text).toBe('"code"');
    expect(second.output_text).toBe('second');
    expect(first).toMatchObject({ object: 'response', status: 'completed', model: 'm' });
    expect(first.output[0]).toMatchObject({ type: 'message', role: 'assistant' });
  });

  it('takes the role from prompt_cache_key when the header is absent', async () => {
    const { model, client } = await start({ answers: { reviewer: [{ json: { ok: true } }] } });

    const reply = await client.responses.create({ model: 'm', input: 'x', prompt_cache_key: 'stagegate:t-9:reviewer' });

    expect(reply.output_text).toBe('{"ok":true}');
    expect(model.requests[0]).toMatchObject({ role: 'reviewer', taskId: 't-9' });
  });

  it('streams a text answer as the same server-sent events OpenAI sends', async () => {
    const text = JSON.stringify({ summary: 'a plan long enough to be split into several deltas' });
    const { client } = await start({ answers: { planner: [{ text }] } });

    const stream = await client.responses.create({ model: 'm', input: 'go', stream: true }, asRole('planner'));
    const types: string[] = [];
    let streamed = '';
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') streamed += event.delta;
      if (event.type === 'response.completed') completed = event.response;
    }

    expect(streamed).toBe(text);
    expect(types.filter((t) => t === 'response.output_text.delta').length).toBeGreaterThan(1);
    expect([...new Set(types)]).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(completed?.output).toMatchObject([{ type: 'message', content: [{ type: 'output_text', text }] }]);
  });

  it('streams function calls that responses.stream() accumulates', async () => {
    const args = JSON.stringify({ path: 'src/app.ts', patch: '*** Begin Patch' });
    const call = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'apply_patch', arguments: args };
    const { client } = await start({ answers: { coder: [{ output: [call] }] } });

    const stream = client.responses.stream({ model: 'm', input: 'go' }, asRole('coder'));
    const deltas: string[] = [];
    stream.on('response.function_call_arguments.delta', (event) => deltas.push(event.delta));
    const final = await stream.finalResponse();

    expect(deltas.join('')).toBe(args);
    expect(final.output).toMatchObject([call]);
  });

  it('answers an error answer with its status, OpenAI error body and Retry-After', async () => {
    const { client } = await start({
      answers: { planner: [{ error: { status: 429, message: 'slow down', retryAfterSeconds: 0.05 } }] },
    });

    const err = await client.responses.create({ model: 'm', input: 'x' }, asRole('planner')).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimit = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateLimit.message).toBe('429 slow down');
    expect(rateLimit.type).toBe('requests');
    expect(rateLimit.headers.get('retry-after')).toBe('0.05');
  });

  it('lets the SDK retry after an error answer and serves the next answer', async () => {
    const { model } = await start({
      answers: { planner: [{ error: { status: 429, message: 'slow down', retryAfterSeconds: 0.01 } }, { json: 1 }] },
    });
    const client = new OpenAI({ apiKey: 'k', baseURL: model.url, maxRetries: 1 });

    const reply = await client.responses.create({ model: 'm', input: 'x' }, asRole('planner'));

    expect(reply.output_text).toBe('1');
    expect(model.requests).toHaveLength(2);
  });

  it('fails loudly with a 500 the SDK does not retry when a role has no answer left', async () => {
    const { model } = await start({ answers: { planner: [{ json: 1 }] } });
    const client = new OpenAI({ apiKey: 'k', baseURL: model.url, maxRetries: 2 });
    await client.responses.create({ model: 'm', input: 'x' }, asRole('planner'));

    const fail = (options?: ReturnType<typeof asRole>) =>
      client.responses.create({ model: 'm', input: 'x' }, options).catch((e: unknown) => e);

    const exhausted = await fail(asRole('planner'));
    const unknown = await fail();

    expect(exhausted).toBeInstanceOf(OpenAI.InternalServerError);
    expect((exhausted as Error).message).toBe('500 scripted model has no answer left for role planner (request 2)');
    expect((unknown as Error).message).toMatch(/^500 scripted model has no answer left for role \(none: .*\(request 3\)$/u);
    expect(model.requests).toHaveLength(3);
  });

  it('counts cached tokens for the prefix shared with the previous prompt of the same cache key', async () => {
    const { client } = await start({ answers: { coder: [{ json: 1 }, { json: 2 }, { json: 3 }] } });
    const instructions = 'You are the coder. '.repeat(100);
    const ask = (input: string, key: string) =>
      client.responses.create({ model: 'm', instructions, input, prompt_cache_key: key }, asRole('coder'));

    const first = await ask('step one', 'stagegate:t-1:coder');
    const second = await ask('step two', 'stagegate:t-1:coder');
    const otherKey = await ask('step two', 'stagegate:t-2:coder');

    expect(first.usage?.input_tokens_details.cached_tokens).toBe(0);
    const cached = second.usage?.input_tokens_details.cached_tokens ?? 0;
    expect(cached).toBeGreaterThan(0);
    expect(cached % 64).toBe(0);
    expect(cached).toBeLessThanOrEqual(second.usage?.input_tokens ?? 0);
    expect(otherKey.usage?.input_tokens_details.cached_tokens).toBe(0);
    expect(second.usage).toMatchObject({ output_tokens: 1, output_tokens_details: { reasoning_tokens: 0 } });
  });

  it('records every request with its body, store flag and headers but not the API key', async () => {
    const record = join(dir, 'requests.jsonl');
    const { model, client } = await start({ answers: { deployer: [{ json: 1 }] } }, record);

    await client.responses.create({ model: 'm', input: 'ship', store: false }, asRole('deployer', 't-7'));

    const [request] = model.requests;
    expect(request).toMatchObject({ index: 1, role: 'deployer', taskId: 't-7', body: { store: false, input: 'ship' } });
    expect(request?.body.previous_response_id).toBeUndefined();
    expect(request?.headers).not.toHaveProperty('authorization');
    const lines = (await readFile(record, 'utf8')).trim().split('\n');
    expect(lines.map((line) => RecordedRequest.parse(JSON.parse(line)))).toEqual([request]);
    expect(await readFile(record, 'utf8')).not.toContain('sk-test-secret');
  });

  it('builds an answer with a function given the request', async () => {
    const { client } = await start({
      answers: { planner: [(request) => ({ json: { echo: String(request.body.input) } })] },
    });

    const reply = await client.responses.create({ model: 'm', input: 'hello' }, asRole('planner'));

    expect(reply.output_text).toBe('{"echo":"hello"}');
  });

  it('serves answers enqueued after start', async () => {
    const { model, client } = await start({ answers: {} });
    model.enqueue('reviewer', { json: 'late' });
    expect(model.remaining()).toBe(1);

    const reply = await client.responses.create({ model: 'm', input: 'x' }, asRole('reviewer'));

    expect(reply.output_text).toBe('"late"');
    expect(model.remaining('reviewer')).toBe(0);
  });

  it('loads a script file and names the wrong field of a bad one', async () => {
    const good = join(dir, 'good.json');
    await writeFile(good, JSON.stringify({ answers: { planner: [{ json: { ok: 1 }, delayMs: 5 }] } }));
    const bad = join(dir, 'bad.json');
    await appendFile(bad, JSON.stringify({ answers: { coder: [{ error: { status: 'x', message: 'm' } }] } }));

    server = await startScriptedModelServer({ script: { file: good } });
    const client = new OpenAI({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
    expect((await client.responses.create({ model: 'm', input: 'x' }, asRole('planner'))).output_text).toBe('{"ok":1}');

    const err = await startScriptedModelServer({ script: { file: bad } }).catch((e: unknown) => e);
    expect(isStagegateError(err, 'SCHEMA_INVALID')).toBe(true);
    expect((err as Error).message).toContain("'answers.coder[0].error.status'");
  });

  it('serves the same answers over Chat Completions: text as content, function calls as tool_calls', async () => {
    const call = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'read_file', arguments: '{"path":"a.js"}' };
    const reasoning = { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'enc' };
    const { model, client } = await start({ answers: { coder: [{ json: { ok: true } }, { output: [reasoning, call] }] } });
    const ask = () =>
      client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'go' }], prompt_cache_key: 'stagegate:t-1:coder' });

    const text = await ask();
    const calls = await ask();

    expect(text.choices[0]?.message).toMatchObject({ role: 'assistant', content: '{"ok":true}' });
    expect(text.choices[0]?.finish_reason).toBe('stop');
    expect(calls.choices[0]?.message.content).toBeNull();
    expect(calls.choices[0]?.message.tool_calls).toEqual([{ id: 'call_1', type: 'function', function: { name: 'read_file', arguments: '{"path":"a.js"}' } }]);
    expect(calls.choices[0]?.finish_reason).toBe('tool_calls');
    expect(calls.usage).toMatchObject({ prompt_tokens_details: { cached_tokens: expect.any(Number) }, completion_tokens_details: { reasoning_tokens: 1 } });
    expect(model.requests.map((r) => [r.path, r.role, r.taskId])).toEqual([
      ['/v1/chat/completions', 'coder', 't-1'],
      ['/v1/chat/completions', 'coder', 't-1'],
    ]);
  });

  it('streams chat.completion.chunks with content and tool call deltas, usage last, then [DONE]', async () => {
    const args = JSON.stringify({ command: ['npm', 'test'], workdir: null, timeoutMs: null });
    const output = [
      { type: 'message', id: 'm1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Running the tests now.', annotations: [] }] },
      { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'shell', arguments: args },
    ];
    const { client } = await start({ answers: { coder: [{ output }] } });

    const stream = await client.chat.completions.create(
      { model: 'm', messages: [{ role: 'user', content: 'go' }], stream: true, stream_options: { include_usage: true } },
      asRole('coder'),
    );
    let content = '';
    const argDeltas: string[] = [];
    const finish: Array<string | null> = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (choice === undefined) continue;
      content += choice.delta.content ?? '';
      for (const call of choice.delta.tool_calls ?? []) argDeltas.push(call.function?.arguments ?? '');
      if (choice.finish_reason !== null) finish.push(choice.finish_reason);
    }

    expect(content).toBe('Running the tests now.');
    expect(argDeltas.join('')).toBe(args);
    expect(argDeltas.filter((d) => d !== '').length).toBeGreaterThan(1);
    expect(finish).toEqual(['tool_calls']);
    expect(usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it('counts reasoning items as reasoning tokens within the output tokens', async () => {
    const reasoning = { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'x'.repeat(40) }], encrypted_content: 'e'.repeat(400) };
    const { client } = await start({ answers: { coder: [{ output: [reasoning] }] } });

    const reply = await client.responses.create({ model: 'm', input: 'x' }, asRole('coder'));

    expect(reply.usage?.output_tokens_details.reasoning_tokens).toBe(110);
    expect(reply.usage?.output_tokens).toBeGreaterThan(110);
  });

  it('rejects an answer that is not exactly one kind', async () => {
    const err = await startScriptedModelServer({ script: { answers: { planner: [{ json: 1, text: 'x' }] } } }).catch(
      (e: unknown) => e,
    );

    expect(isStagegateError(err, 'SCHEMA_INVALID')).toBe(true);
    expect((err as Error).message).toContain("expected exactly one of 'json', 'text', 'output', 'error'");
  });
});
