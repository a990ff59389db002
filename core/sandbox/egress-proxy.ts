/**
 * The only way out of the sandbox's network namespace: an HTTP proxy on a Unix socket that the
 * sandbox can reach (a socket file crosses the namespace, TCP does not). It runs in the worker,
 * outside the sandbox, and dials only hosts the rules allow: `CONNECT host:port` tunnels (HTTPS,
 * git, npm) and absolute-URI requests (plain HTTP). Names are resolved here, never inside, so a
 * command cannot pick the address an allowed name goes to. Everything else is refused with 403
 * and a body that says which host and where it could be allowed.
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { egressAllows, type EgressRule } from './egress-rules.js';

export interface EgressProxy {
  close(): Promise<void>;
}

export interface EgressProxyOptions {
  socketPath: string;
  rules: readonly EgressRule[];
  log: Logger;
}

const HOP_BY_HOP = ['proxy-connection', 'proxy-authorization', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade'];

export async function startEgressProxy(options: EgressProxyOptions): Promise<EgressProxy> {
  const sockets = new Set<Duplex>();
  const track = (socket: Duplex): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  const server = http.createServer((req, res) => forward(req, res, options, track));
  server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => tunnel(req, client, head, options, track));
  server.on('connection', track);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function refusal(host: string, port: number): string {
  return `stagegate egress: ${host}:${port} is not on the allow-list for sandboxed commands (allow it with sandbox.egress in .github/stagegate.yml)\n`;
}

function tunnel(req: http.IncomingMessage, client: Duplex, head: Buffer, options: EgressProxyOptions, track: (s: Duplex) => void): void {
  const target = parseAuthority(req.url ?? '');
  client.on('error', () => client.destroy());
  if (target === undefined || !egressAllows(options.rules, target.host, target.port)) {
    const shown = target ?? { host: req.url ?? '', port: 0 };
    options.log.warn({ host: shown.host, port: shown.port, method: 'CONNECT' }, 'sandboxed command refused egress');
    client.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${refusal(shown.host, shown.port)}`);
    return;
  }
  options.log.info({ host: target.host, port: target.port, method: 'CONNECT' }, 'sandboxed command allowed egress');
  const upstream = net.connect(target.port, target.host);
  track(upstream);
  upstream.once('connect', () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client).pipe(upstream);
  });
  upstream.on('error', (err) => {
    options.log.warn({ host: target.host, port: target.port, err: err.message }, 'egress tunnel failed');
    if (client.writable) client.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${err.message}\n`);
  });
}

function forward(req: http.IncomingMessage, res: http.ServerResponse, options: EgressProxyOptions, track: (s: Duplex) => void): void {
  let url: URL;
  try {
    url = new URL(req.url ?? '');
  } catch {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('stagegate egress: expected an absolute http:// URL (this is a proxy)\n');
    return;
  }
  const port = url.port === '' ? 80 : Number(url.port);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (url.protocol !== 'http:' || !egressAllows(options.rules, host, port)) {
    options.log.warn({ host, port, method: req.method }, 'sandboxed command refused egress');
    res.writeHead(403, { 'content-type': 'text/plain' }).end(refusal(host, port));
    return;
  }
  options.log.info({ host, port, method: req.method }, 'sandboxed command allowed egress');
  const headers = { ...req.headers };
  for (const name of HOP_BY_HOP) delete headers[name];
  const upstream = http.request({ host, port, method: req.method, path: `${url.pathname}${url.search}`, headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('socket', track);
  upstream.on('error', (err) => {
    options.log.warn({ host, port, err: err.message }, 'egress request failed');
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`${err.message}\n`);
  });
  req.pipe(upstream);
}

/** `host:port` of a CONNECT request; IPv6 literals in brackets. */
function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/i.exec(authority);
  if (match === null) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return undefined;
  return { host: (match[1] ?? match[2] ?? '').toLowerCase(), port };
}
