import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ModelConfig } from '../../core/config.js';
import { isStagegateError, type StagegateError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { createModelClient } from '../../core/model/client.js';
import { startScriptedModelServer, type Script, type ScriptedModelServer } from '../../core/scripted-model/index.js';

const Verdict = z.object({ decision: z.enum(['approve', 'request_changes']), summary: z.string().min(1) });
const approve = { decision: 'approve', summary: 'looks right' };

let server: ScriptedModelServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Log lines land here, so a test can check what was (and was not) written. */
function captureLog(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { log: createLogger({ level: 'debug', destination }), lines };
}

async function setup(script: Script, config: Partial<ModelConfig> = {}) {
  server = await startScriptedModelServer({ script });
  const { log, lines } = captureLog();
  const client = createModelClient(
    ModelConfig.parse({ apiKey: 'sk-test-secret', baseUrl: server.url, maxRetries: 0, ...config }),
    log,
  );
  return { model: server, client, lines };
}

const askReviewer = (taskId = 't-1') => ({
  taskId,
  role: 'reviewer' as const,
  instructions: 'You review code.',
  input: 'Review commit abc123.',
  schema: Verdict,
  schemaName: 'verdict',
});

describe('model client', () => {
  it('parses a valid structured reply and reports its usage', async () => {
    const { client, lines } = await setup({ answers: { reviewer: [{ json: approve }] } });

    const reply = await client.generateStructured(askReviewer());

    expect(reply.value).toEqual(approve);
    expect(reply.usage).toMatchObject({ calls: 1, cachedTokens: 0, reasoningTokens: 0 });
    expect(reply.usage.inputTokens).toBeGreaterThan(0);
    expect(reply.usage.outputTokens).toBe(Math.ceil(JSON.stringify(approve).length / 4));
    const debug = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((l) => l.msg === 'model call');
    expect(debug).toMatchObject({ taskId: 't-1', role: 'reviewer', model: 'gpt-5.1-codex' });
    expect(lines.join('')).not.toContain('Review commit abc123');
  });

  it('sends a stateless request with the cache key, role headers and strict schema', async () => {
    const { model, client } = await setup({ answers: { reviewer: [{ json: approve }] } }, {
      roleModels: { reviewer: 'gpt-reviewer' },
    });

    await client.generateStructured(askReviewer('t-42'));

    const [request] = model.requests;
    expect(request?.headers).toMatchObject({ 'x-stagegate-role': 'reviewer', 'x-stagegate-task': 't-42' });
    expect(request?.headers).not.toHaveProperty('authorization');
    expect(request?.body).toMatchObject({
      model: 'gpt-reviewer',
      store: false,
      instructions: 'You review code.',
      input: [{ role: 'user', content: 'Review commit abc123.' }],
      prompt_cache_key: 'stagegate:t-42:reviewer',
      text: { format: { type: 'json_schema', name: 'verdict', strict: true } },
    });
    expect(request?.body).not.toHaveProperty('previous_response_id');
  });

  it('repairs a schema-breaking reply in one round that names what was wrong', async () => {
    const broken = { decision: 'maybe', summary: 'hmm' };
    const { model, client } = await setup({ answers: { reviewer: [{ json: broken }, { json: approve }] } });

    const reply = await client.generateStructured(askReviewer());

    expect(reply.value).toEqual(approve);
    expect(reply.usage.calls).toBe(2);
    const input = model.requests[1]?.body.input;
    expect(input).toMatchObject([
      { role: 'user', content: 'Review commit abc123.' },
      { role: 'assistant', content: JSON.stringify(broken) },
      { role: 'user' },
    ]);
    const repair = JSON.stringify(Array.isArray(input) ? input[2] : undefined);
    expect(repair).toContain("'decision'");
    expect(model.requests[1]?.body.store).toBe(false);
  });

  it('throws MODEL_OUTPUT_INVALID with the usage spent when the repaired reply is still wrong', async () => {
    const { client } = await setup({
      answers: { reviewer: [{ text: 'not json' }, { json: { decision: 'approve' } }] },
    });

    const err = await client.generateStructured(askReviewer('t-5')).catch((e: unknown) => e);

    expect(isStagegateError(err, 'MODEL_OUTPUT_INVALID')).toBe(true);
    const failure = err as StagegateError;
    expect(failure.message).toMatch(/^reviewer reply for task t-5: 'summary'/);
    expect(failure.taskId).toBe('t-5');
    expect(failure.details?.usage).toMatchObject({ calls: 2 });
  });

  it('gets past a 500 through the SDK retry', async () => {
    const { model, client } = await setup(
      { answers: { reviewer: [{ error: { status: 500, message: 'boom' } }, { json: approve }] } },
      { maxRetries: 1 },
    );

    const reply = await client.generateStructured(askReviewer());

    expect(reply.value).toEqual(approve);
    expect(model.requests).toHaveLength(2);
  });

  it('throws MODEL_HTTP naming the endpoint and status, without the API key', async () => {
    const { model, client } = await setup({
      answers: { reviewer: [{ error: { status: 401, message: 'Incorrect API key provided: sk-test-secret' } }] },
    });

    const err = await client.generateStructured(askReviewer('t-3')).catch((e: unknown) => e);

    expect(isStagegateError(err, 'MODEL_HTTP')).toBe(true);
    const failure = err as StagegateError;
    expect(failure.message).toBe(`model endpoint ${model.url} answered 401 Incorrect API key provided: [redacted]`);
    expect(failure.taskId).toBe('t-3');
    expect(failure.details).toMatchObject({ status: 401, usage: { calls: 0 } });
  });

  it('throws MODEL_HTTP naming the endpoint when nothing listens there', async () => {
    const { model, client } = await setup({ answers: {} });
    await model.close();

    const err = await client.generateStructured(askReviewer()).catch((e: unknown) => e);

    expect(isStagegateError(err, 'MODEL_HTTP')).toBe(true);
    expect((err as Error).message).toBe(`model endpoint ${model.url} could not be reached (ECONNREFUSED)`);
  });

  it('throws MODEL_HTTP when the endpoint does not answer within the timeout', async () => {
    const { model, client } = await setup({ answers: { reviewer: [{ json: approve, delayMs: 300 }] } }, { timeoutMs: 50 });

    const err = await client.generateStructured(askReviewer()).catch((e: unknown) => e);

    expect(isStagegateError(err, 'MODEL_HTTP')).toBe(true);
    expect((err as Error).message).toBe(`model endpoint ${model.url} did not answer within 50 ms`);
  });

  it('refuses to start without an API key', () => {
    const { log } = captureLog();

    expect(() => createModelClient(ModelConfig.parse({}), log)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(/^OPENAI_API_KEY is not set/) }),
    );
  });
});
