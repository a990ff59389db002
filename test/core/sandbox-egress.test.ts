/**
 * The sandbox's only way out: with an allow-list, tools that honour the usual proxy variables
 * reach the allowed hosts through the egress proxy (HTTP and CONNECT tunnels) and nothing else;
 * without one, nothing at all. Every request the servers here receive is recorded, so "refused"
 * means the host never saw the request, not merely that the command failed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../core/log.js';
import { detectBwrap } from '../../core/sandbox/detect-bwrap.js';
import { EgressRule, egressAllows } from '../../core/sandbox/egress-rules.js';
import { createSandbox, withEgress, type Sandbox } from '../../core/sandbox/sandbox.js';

const bwrap = await detectBwrap();

interface RecordingServer {
  port: number;
  paths: string[];
  close(): Promise<void>;
}

async function recordingServer(name: string): Promise<RecordingServer> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    res.end(`hello from ${name}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    paths,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('egress rules', () => {
  it('match a host on 80 and 443, a named port, and names under a wildcard domain', () => {
    const rules = ['registry.npmjs.org', '*.pypi.org', 'mirror.example:8443'].map((r) => EgressRule.parse(r));
    expect(egressAllows(rules, 'registry.npmjs.org', 443)).toBe(true);
    expect(egressAllows(rules, 'REGISTRY.npmjs.org.', 80)).toBe(true);
    expect(egressAllows(rules, 'registry.npmjs.org', 22)).toBe(false);
    expect(egressAllows(rules, 'evil-registry.npmjs.org', 443)).toBe(false);
    expect(egressAllows(rules, 'files.pypi.org', 443)).toBe(true);
    expect(egressAllows(rules, 'pypi.org.evil.test', 443)).toBe(false);
    expect(egressAllows(rules, 'mirror.example', 8443)).toBe(true);
    expect(egressAllows(rules, 'mirror.example', 443)).toBe(false);
  });

  it('refuse URLs, credentials, paths and bad ports with a message that shows the form expected', () => {
    for (const bad of ['https://registry.npmjs.org', 'user:pw@host', 'host/path', 'host:0', 'host:70000', '*', 'a..b']) {
      const parsed = EgressRule.safeParse(bad);
      expect(parsed.success, bad).toBe(false);
    }
    expect(EgressRule.safeParse('https://x').error?.issues[0]?.message).toContain("expected a host name such as 'registry.npmjs.org'");
  });
});

describe.skipIf(!bwrap.usable)('sandbox egress through the proxy', () => {
  let allowed: RecordingServer;
  let other: RecordingServer;
  let worktree: string;
  let sandbox: Sandbox;
  let log: Logger;
  const logLines: string[] = [];

  beforeAll(async () => {
    allowed = await recordingServer('allowed');
    other = await recordingServer('other');
    worktree = await mkdtemp(path.join(tmpdir(), 'sg-egress-wt-'));
    log = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } });
    sandbox = await createSandbox({ allowUnsandboxed: false, log, env: { PATH: process.env.PATH } });
  });

  afterAll(async () => {
    await allowed?.close();
    await other?.close();
    if (worktree !== undefined) await rm(worktree, { recursive: true, force: true });
  });

  const run = (s: Sandbox, command: string) => s.run(command, { writableDir: worktree, cwd: worktree, timeoutMs: 30_000 });

  it('reaches an allowed host over plain HTTP and through a CONNECT tunnel, and logs it with the task', async () => {
    const taskLog = log.child({ taskId: 'task-egress' });
    const open = withEgress(sandbox, [EgressRule.parse(`127.0.0.1:${allowed.port}`)], taskLog);
    const plain = await run(open, `curl -sS http://127.0.0.1:${allowed.port}/plain`);
    expect(plain.output).toContain('hello from allowed');
    expect(plain.exitCode).toBe(0);
    const tunnelled = await run(open, `curl -sS --proxytunnel http://127.0.0.1:${allowed.port}/tunnel`);
    expect(tunnelled.output).toContain('hello from allowed');
    expect(allowed.paths).toEqual(['/plain', '/tunnel']);
    const allowedLines = logLines.filter((line) => line.includes('sandboxed command allowed egress'));
    expect(allowedLines).toHaveLength(2);
    expect(allowedLines.every((line) => line.includes('"taskId":"task-egress"'))).toBe(true);
  });

  it('refuses every other host with a 403 that says how to allow it, and the host never sees the request', async () => {
    const open = withEgress(sandbox, [EgressRule.parse(`127.0.0.1:${allowed.port}`)], log);
    const plain = await run(open, `curl -sS http://127.0.0.1:${other.port}/plain`);
    expect(plain.output).toContain(`127.0.0.1:${other.port} is not on the allow-list`);
    expect(plain.output).toContain('sandbox.egress in .github/stagegate.yml');
    const tunnelled = await run(open, `curl -sS --fail --proxytunnel http://127.0.0.1:${other.port}/tunnel`);
    expect(tunnelled.exitCode).not.toBe(0);
    expect(tunnelled.output).toContain('403');
    expect(other.paths).toEqual([]);
  });

  it('cannot go around the proxy: a direct connection finds no network', async () => {
    const open = withEgress(sandbox, [EgressRule.parse(`127.0.0.1:${allowed.port}`)], log);
    const before = allowed.paths.length;
    const direct = await run(open, `curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:${allowed.port}/direct`);
    expect(direct.exitCode).not.toBe(0);
    expect(allowed.paths).toHaveLength(before);
  });

  it('without an allow-list has no network and no proxy at all', async () => {
    const before = allowed.paths.length;
    const closed = await run(sandbox, `echo "proxy=[$HTTPS_PROXY]"; curl -sS --max-time 5 http://127.0.0.1:${allowed.port}/closed`);
    expect(closed.output).toContain('proxy=[]');
    expect(closed.exitCode).not.toBe(0);
    expect(allowed.paths).toHaveLength(before);
  });

  it('passes the exit code and output of the command through the bridge', async () => {
    const open = withEgress(sandbox, [EgressRule.parse('registry.npmjs.org')], log);
    const result = await run(open, 'echo out; echo err >&2; exit 3');
    expect(result.exitCode).toBe(3);
    expect(result.output).toContain('out');
    expect(result.output).toContain('err');
    const missing = await open.run(['no-such-program-here'], { writableDir: worktree, cwd: worktree, timeoutMs: 30_000 });
    expect(missing.exitCode).toBe(127);
  });
});
