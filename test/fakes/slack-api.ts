/**
 * A loopback Slack Web API for tests: Bolt's WebClient is pointed at `url` (SLACK_API_URL), and
 * every call it makes is recorded with its decoded arguments. Only the methods a test expects
 * are answered `ok: true`; any other method, or a call with the wrong token, is recorded in
 * `unexpected` and answered the way Slack answers it (`ok: false`), so a test that checks
 * `unexpected` at the end fails on anything the code was not supposed to do.
 *
 * With `appToken`, it also plays Slack's Socket Mode: apps.connections.open answers with a
 * ws:// URL on the same server, which greets each connection with `hello`; `socket.deliver`
 * sends an envelope as Slack would and resolves with the client's acknowledgement.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface SlackCall {
  method: string;
  /** Form or JSON arguments; `blocks`, `view` and `attachments` are decoded from their JSON text. */
  args: Record<string, unknown>;
  token: string | undefined;
  /** What the fake answered. */
  reply: Record<string, unknown>;
}

export type SlackAnswer = Record<string, unknown> | ((call: SlackCall) => Record<string, unknown>);

export interface FakeSlackApiOptions {
  botToken: string;
  /** Methods answered `ok: true` (with a plausible reply) besides auth.test. */
  expect: string[];
  /** Token for apps.connections.open (Socket Mode). */
  appToken?: string;
  /** The channel id chat.postMessage answers with, whatever name it was given. */
  channelId?: string;
  /** User groups for usergroups.list: id → member user ids. */
  usergroups?: Record<string, string[]>;
}

export interface FakeSlackApi {
  /** Base URL ending in `/api/`, as SLACK_API_URL expects. */
  url: string;
  calls: SlackCall[];
  unexpected: string[];
  callsOf(method: string, where?: (call: SlackCall) => boolean): SlackCall[];
  /** Resolves with the first call (already made or still to come) that matches. */
  waitForCall(method: string, where?: (call: SlackCall) => boolean, timeoutMs?: number): Promise<SlackCall>;
  /** Answers the next call of `method` with this instead of the default. */
  answerNext(method: string, answer: SlackAnswer): void;
  socket: FakeSocketMode;
  close(): Promise<void>;
}

export interface FakeSocketMode {
  /** Resolves once a Socket Mode client has connected and been greeted. */
  connected(timeoutMs?: number): Promise<void>;
  /** Sends `{ envelope_id, type, payload }` and resolves with what the client acked it with. */
  deliver(type: string, payload: unknown, timeoutMs?: number): Promise<Record<string, unknown>>;
}

const JSON_ARGS = new Set(['blocks', 'view', 'attachments']);

export async function startFakeSlackApi(options: FakeSlackApiOptions): Promise<FakeSlackApi> {
  const calls: SlackCall[] = [];
  const unexpected: string[] = [];
  const queued = new Map<string, SlackAnswer[]>();
  const events = new EventEmitter();
  events.setMaxListeners(100);
  const expected = new Set(['auth.test', ...options.expect]);
  const channelId = options.channelId ?? 'C0GATES';
  let seq = 0;
  const nextTs = () => `1700000000.${String(++seq).padStart(6, '0')}`;

  const defaults: Record<string, (call: SlackCall) => Record<string, unknown>> = {
    'auth.test': () => ({ user_id: 'UBOT', bot_id: 'BBOT', team_id: 'T0TEAM', team: 'acme', user: 'stagegate' }),
    'chat.postMessage': () => ({ channel: channelId, ts: nextTs(), message: {} }),
    'chat.update': (call) => ({ channel: call.args.channel, ts: call.args.ts }),
    'chat.postEphemeral': () => ({ message_ts: nextTs() }),
    'views.open': () => ({ view: { id: `V${calls.length}` } }),
    'usergroups.list': () => ({
      usergroups: Object.entries(options.usergroups ?? {}).map(([id, users]) => ({ id, handle: id.toLowerCase(), users })),
    }),
  };

  const server = createServer(async (req, res) => {
    const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
    const call: SlackCall = { method, args: await readArgs(req), token: bearerOf(req), reply: {} };
    calls.push(call);
    const wantedToken = method === 'apps.connections.open' ? options.appToken : options.botToken;
    let body: Record<string, unknown>;
    if (!expected.has(method)) {
      unexpected.push(`${method} (not expected)`);
      body = { ok: false, error: 'unknown_method' };
    } else if (call.token !== wantedToken) {
      unexpected.push(`${method} with the wrong token`);
      body = { ok: false, error: 'invalid_auth' };
    } else {
      const answer = queued.get(method)?.shift() ?? defaults[method] ?? {};
      body = { ok: true, ...(typeof answer === 'function' ? answer(call) : answer) };
    }
    call.reply = body;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
    events.emit('call', call);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const wss = new WebSocketServer({ server, path: '/link' });
  let client: WebSocket | undefined;
  let envelopes = 0;
  wss.on('connection', (ws) => {
    client = ws;
    ws.on('message', (data) => events.emit('socket-message', JSON.parse(String(data)) as Record<string, unknown>));
    ws.send(JSON.stringify({ type: 'hello', num_connections: 1, connection_info: { app_id: 'A0STAGEGATE' } }));
    events.emit('socket-connected');
  });
  defaults['apps.connections.open'] = () => ({ url: `ws://127.0.0.1:${port}/link?ticket=fake` });
  const waitEvent = <T>(name: string, what: string, timeoutMs: number, match: (value: T) => boolean = () => true) =>
    new Promise<T>((resolve, reject) => {
      const on = (value: T) => {
        if (!match(value)) return;
        clearTimeout(timer);
        events.off(name, on);
        resolve(value);
      };
      const timer = setTimeout(() => {
        events.off(name, on);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      events.on(name, on);
    });
  const socket: FakeSocketMode = {
    connected: (timeoutMs = 15_000) => (client === undefined ? waitEvent<void>('socket-connected', 'a Socket Mode connection', timeoutMs) : Promise.resolve()),
    async deliver(type, payload, timeoutMs = 15_000) {
      if (client === undefined) throw new Error('no Socket Mode client is connected');
      const envelopeId = `envelope-${++envelopes}`;
      const acked = waitEvent<Record<string, unknown>>('socket-message', `the ack of ${envelopeId}`, timeoutMs, (m) => m.envelope_id === envelopeId);
      client.send(JSON.stringify({ envelope_id: envelopeId, type, payload, accepts_response_payload: type === 'interactive' }));
      return acked;
    },
  };

  const callsOf = (method: string, where: (call: SlackCall) => boolean = () => true) =>
    calls.filter((c) => c.method === method && where(c));

  return {
    url: `http://127.0.0.1:${port}/api/`,
    calls,
    unexpected,
    callsOf,
    waitForCall(method, where = () => true, timeoutMs = 15_000) {
      const found = callsOf(method, where)[0];
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const onCall = (call: SlackCall) => {
          if (call.method !== method || !where(call)) return;
          clearTimeout(timer);
          events.off('call', onCall);
          resolve(call);
        };
        const timer = setTimeout(() => {
          events.off('call', onCall);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for a Slack ${method} call (calls so far: ${calls.map((c) => c.method).join(', ') || 'none'})`));
        }, timeoutMs);
        events.on('call', onCall);
      });
    },
    answerNext(method, answer) {
      queued.set(method, [...(queued.get(method) ?? []), answer]);
    },
    socket,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function bearerOf(req: IncomingMessage): string | undefined {
  const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  return match?.[1];
}

async function readArgs(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return {};
  if ((req.headers['content-type'] ?? '').includes('application/json')) return JSON.parse(text) as Record<string, unknown>;
  const args: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(text)) args[key] = JSON_ARGS.has(key) ? JSON.parse(value) : value;
  return args;
}
