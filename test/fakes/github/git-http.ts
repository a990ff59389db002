/**
 * Git's smart HTTP protocol for the fake's bare repositories, served by the real
 * `git http-backend` as a CGI: request and response bodies are streamed through it, so clones,
 * fetches and pushes behave exactly as against a git server. The push commands
 * (`<old> <new> <ref>` pkt-lines before the pack) are read from a copy of the request body, and
 * once git is done each update is checked against the repository: applied or refused, created,
 * deleted, or forced (not a fast-forward).
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { gitEnv, isAncestor, runGit } from './bare-repo.js';
import { ZERO_SHA, type PushUpdate } from './state.js';

export interface GitCgiRequest {
  /** Directory holding `<owner>/<repo>.git`. */
  root: string;
  /** `/<owner>/<repo>.git/info/refs`, `/<owner>/<repo>.git/git-receive-pack`, … */
  pathInfo: string;
  query: string;
  remoteUser: string;
}

export interface GitCgiResult {
  exitCode: number;
  stderr: string;
  /** Ref updates the client asked for (receive-pack only). */
  commands: Array<{ before: string; after: string; ref: string }>;
}

/**
 * Runs one request through `git http-backend`. `beforeEnd` sees the push commands once git has
 * finished and before the response ends, so whatever it records is there when the client's
 * `git push` returns.
 */
export function serveGitHttp(
  req: IncomingMessage,
  res: ServerResponse,
  cgi: GitCgiRequest,
  beforeEnd: (result: GitCgiResult) => Promise<void> = async () => undefined,
): Promise<GitCgiResult> {
  const header = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const env: Record<string, string> = {
    GIT_PROJECT_ROOT: cgi.root,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: cgi.pathInfo,
    QUERY_STRING: cgi.query,
    REQUEST_METHOD: req.method ?? 'GET',
    CONTENT_TYPE: header('content-type') ?? '',
    REMOTE_USER: cgi.remoteUser,
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
  };
  const length = header('content-length');
  if (length !== undefined) env.CONTENT_LENGTH = length;
  const encoding = header('content-encoding');
  if (encoding !== undefined) env.HTTP_CONTENT_ENCODING = encoding;
  const protocol = header('git-protocol');
  if (protocol !== undefined) env.GIT_PROTOCOL = protocol;

  const isPush = cgi.pathInfo.endsWith('/git-receive-pack');
  const child = spawn('git', ['http-backend'], { env: gitEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  const body: Buffer[] = [];
  if (isPush) req.on('data', (chunk: Buffer) => body.push(chunk));
  req.pipe(child.stdin);
  child.stdin.on('error', () => undefined);

  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));

  let head = Buffer.alloc(0);
  let headersSent = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersSent) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1;
    if (end < 0) return;
    const { status, headers } = parseCgiHeaders(head.subarray(0, end).toString('latin1'));
    res.writeHead(status, headers);
    headersSent = true;
    res.write(head.subarray(end));
  });

  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (!headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.write(`git http-backend failed: ${stderr}`);
      }
      let commands: GitCgiResult['commands'] = [];
      if (isPush) {
        const raw = Buffer.concat(body);
        commands = parsePushCommands(encoding === 'gzip' ? gunzipSync(raw) : raw);
      }
      const result = { exitCode: code ?? -1, stderr, commands };
      beforeEnd(result).then(
        () => {
          res.end();
          resolve(result);
        },
        (err: unknown) => {
          res.end();
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  });
}

function parseCgiHeaders(text: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at <= 0) continue;
    const name = line.slice(0, at).trim();
    const value = line.slice(at + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
    else headers[name] = value;
  }
  return { status, headers };
}

/** The `<old> <new> <ref>` commands at the start of a receive-pack request (pkt-lines up to the first flush). */
export function parsePushCommands(body: Buffer): GitCgiResult['commands'] {
  const commands: GitCgiResult['commands'] = [];
  let at = 0;
  while (at + 4 <= body.length) {
    const length = Number.parseInt(body.subarray(at, at + 4).toString('latin1'), 16);
    if (!Number.isFinite(length) || length === 0) break;
    const line = body.subarray(at + 4, at + length).toString('utf8');
    at += length;
    const match = /^([0-9a-f]{40}) ([0-9a-f]{40}) (\S+)/.exec(line.split('\0')[0] ?? '');
    if (match !== null) commands.push({ before: match[1] ?? '', after: match[2] ?? '', ref: match[3] ?? '' });
  }
  return commands;
}

/** What each requested update did to the repository, checked after git has finished. */
export async function describePush(dir: string, commands: GitCgiResult['commands']): Promise<PushUpdate[]> {
  const updates: PushUpdate[] = [];
  for (const { before, after, ref } of commands) {
    const now = await runGit(dir, ['rev-parse', '--verify', '--quiet', ref]);
    const current = now.code === 0 ? now.stdout.trim() : ZERO_SHA;
    const created = before === ZERO_SHA;
    const deleted = after === ZERO_SHA;
    const forced = !created && !deleted && !(await isAncestor(dir, before, after));
    updates.push({ ref, before, after, created, deleted, forced, applied: current === after });
  }
  return updates;
}
