import { afterEach, describe, expect, it } from 'vitest';
import { ModelConfig } from '../../core/config.js';
import { isStagegateError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import type { ConversationItem, FunctionTool } from '../../core/model/conversation.js';
import { createTurnClient } from '../../core/model/turn.js';
import { toChatMessages } from '../../core/model/wire-chat.js';
import { startScriptedModelServer, type Script, type ScriptedModelServer } from '../../core/scripted-model/index.js';

let server: ScriptedModelServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const readFile: FunctionTool = {
  type: 'function',
  name: 'read_file',
  description: 'Reads a file.',
  parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'], additionalProperties: false },
  strict: true,
};

const reasoning = { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'Look first.' }], encrypted_content: 'gAAAA-opaque' };
const note = { type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Reading a.js.', annotations: [] }] };
const call = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'read_file', arguments: '{"path":"a.js"}', status: 'completed' };

async function setup(script: Script, wireApi: 'responses' | 'chat' = 'responses') {
  server = await startScriptedModelServer({ script });
  const config = ModelConfig.parse({ apiKey: 'sk-test', baseUrl: server.url, maxRetries: 0, wireApi, model: 'test-model' });
  return { model: server, client: createTurnClient(config, 'coder', createLogger({ level: 'silent' })) };
}

const ask = (input: ConversationItem[]) => ({ taskId: 't-1', instructions: 'You are the coder.', tools: [readFile], input });

describe('turn client, Responses wire', () => {
  it('streams a stateless request and assembles reasoning, message and function call items with usage', async () => {
    const { model, client } = await setup({ answers: { coder: [{ output: [reasoning, note, call] }] } });

    const reply = await client.runTurn(ask([{ type: 'message', role: 'user', content: 'Add slugify.' }]));

    expect(reply.items).toEqual([
      { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'Look first.' }], encrypted_content: 'gAAAA-opaque' },
      { type: 'message', role: 'assistant', content: 'Reading a.js.' },
      { type: 'function_call', call_id: 'call_1', name: 'read_file', arguments: '{"path":"a.js"}' },
    ]);
    expect(reply.incomplete).toBeNull();
    expect(reply.usage).toMatchObject({ calls: 1, cachedTokens: 0 });
    expect(reply.usage.reasoningTokens).toBeGreaterThan(0);
    const [request] = model.requests;
    expect(request?.path).toBe('/v1/responses');
    expect(request?.body).toMatchObject({
      model: 'test-model',
      instructions: 'You are the coder.',
      stream: true,
      store: false,
      include: ['reasoning.encrypted_content'],
      prompt_cache_key: 'stagegate:t-1:coder',
      tools: [readFile],
      tool_choice: 'auto',
    });
    expect(request?.body).not.toHaveProperty('previous_response_id');
    expect(request?.headers).toMatchObject({ 'x-stagegate-role': 'coder', 'x-stagegate-task': 't-1' });
  });

  it('sends items back without server-side ids, except a reasoning item with its encrypted content', async () => {
    const { model, client } = await setup({ answers: { coder: [{ output: [reasoning, note, call] }, { text: 'done' }] } });
    const first = await client.runTurn(ask([{ type: 'message', role: 'user', content: 'go' }]));
    const input: ConversationItem[] = [
      { type: 'message', role: 'user', content: 'go' },
      ...first.items,
      { type: 'function_call_output', call_id: 'call_1', output: '1\texport const a = 1;' },
    ];

    const second = await client.runTurn(ask(input));

    expect(second.items).toEqual([{ type: 'message', role: 'assistant', content: 'done' }]);
    expect(model.requests[1]?.body.input).toEqual(input);
    expect(JSON.stringify(model.requests[1]?.body.input)).not.toMatch(/"(fc|msg)_1"/);
  });

  it('fails with MODEL_HTTP naming the endpoint when the model answers an error', async () => {
    const { client, model } = await setup({ answers: { coder: [{ error: { status: 400, message: 'context_length_exceeded' } }] } });

    const err = await client.runTurn(ask([{ type: 'message', role: 'user', content: 'go' }])).catch((e: unknown) => e);

    expect(isStagegateError(err, 'MODEL_HTTP')).toBe(true);
    expect((err as Error).message).toBe(`model endpoint ${model.url} answered 400 context_length_exceeded`);
  });
});

describe('turn client, Chat Completions wire', () => {
  it('maps the conversation onto chat messages and streams tool calls back as function call items', async () => {
    const { model, client } = await setup({ answers: { coder: [{ output: [reasoning, note, call] }, { text: 'All done.' }] } }, 'chat');
    const first = await client.runTurn(ask([{ type: 'message', role: 'user', content: 'go' }]));
    expect(first.items).toEqual([
      { type: 'message', role: 'assistant', content: 'Reading a.js.' },
      { type: 'function_call', call_id: 'call_1', name: 'read_file', arguments: '{"path":"a.js"}' },
    ]);
    expect(first.usage.inputTokens).toBeGreaterThan(0);

    const second = await client.runTurn(
      ask([{ type: 'message', role: 'user', content: 'go' }, reasoningItem(), ...first.items, { type: 'function_call_output', call_id: 'call_1', output: 'a = 1' }]),
    );

    expect(second.items).toEqual([{ type: 'message', role: 'assistant', content: 'All done.' }]);
    const body = model.requests[1]?.body;
    expect(model.requests[1]?.path).toBe('/v1/chat/completions');
    expect(body).toMatchObject({ stream: true, store: false, stream_options: { include_usage: true }, prompt_cache_key: 'stagegate:t-1:coder' });
    expect(body?.tools).toEqual([{ type: 'function', function: { name: 'read_file', description: 'Reads a file.', parameters: readFile.parameters, strict: true } }]);
    expect(body?.messages).toEqual([
      { role: 'system', content: 'You are the coder.' },
      { role: 'user', content: 'go' },
      { role: 'assistant', content: 'Reading a.js.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'read_file', arguments: '{"path":"a.js"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'a = 1' },
    ]);
  });

  it('renders an appended conversation as an appended message list', () => {
    const items: ConversationItem[] = [
      { type: 'message', role: 'user', content: 'task' },
      { type: 'function_call', call_id: 'c1', name: 'read_file', arguments: '{}' },
      { type: 'function_call_output', call_id: 'c1', output: 'x' },
    ];
    const more: ConversationItem[] = [...items, { type: 'function_call', call_id: 'c2', name: 'finish', arguments: '{}' }, { type: 'function_call_output', call_id: 'c2', output: 'ok' }];

    const before = toChatMessages('rules', items);
    const after = toChatMessages('rules', more);

    expect(after.slice(0, before.length)).toEqual(before);
  });
});

function reasoningItem(): ConversationItem {
  return { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'gAAAA-opaque' };
}
