/**
 * The scripted model: a loopback HTTP server speaking the OpenAI Responses API (and Chat
 * Completions, for agents set to `wireApi: chat`), reached through `OPENAI_BASE_URL` exactly
 * like a real endpoint. Each agent role has a queue of answers served
 * in order; every request is recorded (credentials left out) so tests can check what was sent.
 * A request nobody scripted an answer for gets a loud 500 the SDK is told not to retry: a test
 * must fail on a call it did not expect, not pass on a made-up answer.
 */
import { appendFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { AgentRole } from '../bus/messages.js';
import { StagegateError, errorMessage } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { parseAt, parseJsonAt } from '../parse.js';
import { identifyCaller, recordableHeaders, ResponsesRequestBody, type RecordedRequest } from './request.js';
import { buildChatCompletion, chatChunksFor, formatChatSse } from './chat-completion.js';
import { buildResponse, outputChars, outputItemsFor, reasoningChars } from './response.js';
import {
  Answer,
  loadScriptFile,
  type ErrorAnswer,
  type Script,
  type ScriptSource,
  type ScriptedAnswer,
} from './script.js';
import { PromptCache } from './simulated-usage.js';
import { formatServerSentEvent, streamEventsFor } from './stream-events.js';

export interface ScriptedModelServerOptions {
  script: Script | ScriptSource;
  /** 0 or absent: any free port. */
  port?: number;
  host?: string;
  log?: Logger;
  /** Appends every recorded request to this file as one JSON line. */
  record?: string;
}

export interface ScriptedModelServer {
  /** Base URL for the openai SDK, ending in `/v1`. */
  readonly url: string;
  readonly requests: readonly RecordedRequest[];
  enqueue(role: AgentRole, ...answers: ScriptedAnswer[]): void;
  /** Answers not yet served, for one role or all of them. */
  remaining(role?: AgentRole): number;
  close(): Promise<void>;
}

const RESPONSES_PATH = '/v1/responses';
const CHAT_PATH = '/v1/chat/completions';
const ChatStreamOptions = z.object({ include_usage: z.boolean().optional() });

type OpenAIErrorBody = Pick<ErrorAnswer, 'message' | 'type' | 'code' | 'retryAfterSeconds'>;

export async function startScriptedModelServer(options: ScriptedModelServerOptions): Promise<ScriptedModelServer> {
  const log = options.log ?? createLogger({ level: 'silent' });
  const host = options.host ?? '127.0.0.1';
  const script = 'file' in options.script ? await loadScriptFile(options.script.file) : options.script;
  const queues = new Map<AgentRole, ScriptedAnswer[]>(AgentRole.options.map((role) => [role, []]));
  const requests: RecordedRequest[] = [];
  const cache = new PromptCache();

  const enqueue = (role: AgentRole, ...answers: ScriptedAnswer[]) => {
    const queue = queues.get(role) ?? [];
    for (const answer of answers) {
      const at = `scripted answer ${queue.length + 1} for ${role}`;
      queue.push(typeof answer === 'function' ? answer : parseAt(Answer, answer, at));
    }
    queues.set(role, queue);
  };
  for (const role of AgentRole.options) enqueue(role, ...(script.answers[role] ?? []));

  async function nextAnswer(request: RecordedRequest): Promise<Answer | undefined> {
    const role = AgentRole.safeParse(request.role);
    const next = role.success ? queues.get(role.data)?.shift() : undefined;
    if (typeof next !== 'function') return next;
    return parseAt(Answer, await next(request), `answer function for ${request.role} (request ${request.index})`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://scripted-model').pathname;
    if (method !== 'POST' || (path !== RESPONSES_PATH && path !== CHAT_PATH)) {
      const message = `scripted model serves POST ${RESPONSES_PATH} and ${CHAT_PATH} only, not ${method} ${path}`;
      return sendError(res, 404, { message }, false);
    }
    let body: ResponsesRequestBody;
    try {
      body = parseJsonAt(ResponsesRequestBody, await readBody(req), `${method} ${path} body`);
    } catch (err) {
      return sendError(res, 400, { message: `scripted model: ${errorMessage(err)}` }, false);
    }
    const headers = recordableHeaders(req.headers);
    const request: RecordedRequest = {
      index: requests.length + 1,
      method,
      path,
      ...identifyCaller(headers, body),
      headers,
      body,
      receivedAt: new Date().toISOString(),
    };
    requests.push(request);
    if (options.record !== undefined) await appendFile(options.record, `${JSON.stringify(request)}\n`);

    const answer = await nextAnswer(request);
    const logFields = { request: request.index, role: request.role, taskId: request.taskId };
    if (answer === undefined) {
      const role = request.role ?? '(none: no x-stagegate-role header or stagegate:<task>:<role> prompt_cache_key)';
      const message = `scripted model has no answer left for role ${role} (request ${request.index})`;
      log.error(logFields, 'scripted model has no answer left');
      return sendError(res, 500, { message, code: 'script_exhausted' }, false);
    }
    if (answer.delayMs !== undefined) await sleep(answer.delayMs);
    if (answer.error !== undefined) {
      log.info({ ...logFields, status: answer.error.status }, 'scripted model answered with an error');
      return sendError(res, answer.error.status, answer.error);
    }

    const output = outputItemsFor(answer, request.index);
    const usage = cache.usageFor(body, outputChars(output), reasoningChars(output));
    const createdAt = Math.floor(Date.now() / 1000);
    const requestId = `req_scripted_${request.index}`;
    log.info({ ...logFields, path, stream: body.stream === true, usage }, 'scripted model answered');
    if (path === CHAT_PATH) {
      const completion = buildChatCompletion({ requestIndex: request.index, body, output, usage, createdAt });
      if (body.stream === true) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': requestId });
        const includeUsage = ChatStreamOptions.safeParse(body.stream_options).data?.include_usage === true;
        res.end(formatChatSse(chatChunksFor(completion, includeUsage)));
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': requestId });
        res.end(JSON.stringify(completion));
      }
      return;
    }
    const response = buildResponse({ requestIndex: request.index, body, output, usage, createdAt });
    if (body.stream === true) {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'x-request-id': requestId,
      });
      for (const event of streamEventsFor(response)) res.write(formatServerSentEvent(event));
      res.end();
    } else {
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': requestId });
      res.end(JSON.stringify(response));
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A broken script (an answer function threw or returned no valid answer): say so, no retry.
      log.error({ err }, 'scripted model could not answer');
      if (res.headersSent) res.destroy();
      else sendError(res, 500, { message: `scripted model: ${errorMessage(err)}` }, false);
    });
  });
  const port = await listen(server, options.port ?? 0, host);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1`;
  log.info({ url }, 'scripted model listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    requests,
    enqueue,
    remaining: (role) =>
      (role === undefined ? [...queues.values()] : [queues.get(role) ?? []]).reduce((n, queue) => n + queue.length, 0),
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err === undefined ? resolve() : reject(err)));
        // The SDK keeps connections alive; without this, close waits for them to time out.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** An error in OpenAI's JSON shape; `retry: false` sets the SDK's `x-should-retry` header. */
function sendError(res: ServerResponse, status: number, error: OpenAIErrorBody, retry?: false): void {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
  if (retry === false) headers['x-should-retry'] = 'false';
  res.writeHead(status, headers);
  const type = error.type ?? (status >= 500 ? 'server_error' : status === 429 ? 'requests' : 'invalid_request_error');
  res.end(JSON.stringify({ error: { message: error.message, type, param: null, code: error.code ?? null } }));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

/** Resolves with the port actually bound (the one asked for, or the free one picked for 0). */
function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) => {
      const message = `scripted model cannot listen on ${host}:${port}: ${err.message}`;
      reject(new StagegateError('CONFIG_INVALID', message, { cause: err }));
    });
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}
