/**
 * `stagegate serve` with the GitHub channel on, against a real nats-server, an in-process
 * orchestrator with canned agents (every gate manual, so a task stops at the plan gate) and the
 * fake GitHub, with one repository `acme/app` and a writer, a reader and our own bot user; or,
 * with `app`, Stagegate as a GitHub App installed on it (what check runs need).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import type { RunningWorker } from '../../core/bus/job-worker.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { loadConfig, type Config } from '../../core/config.js';
import type { TaskRecord } from '../../core/task-record.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { startServe, type RunningServe } from '../../orchestrator/serve/serve.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startFakeGitHub, type FakeGitHub } from '../fakes/github/server.js';
import { startCannedAgents } from './canned-agents.js';
import { startTestNatsServer, type TestNatsServer } from './nats-server.js';
import { delivery, post, type Delivery } from './github-webhooks.js';
import { waitFor } from './wait-for.js';

export const SECRET = 'test-webhook-secret-5b1e';
export const OWNER = 'acme';
export const REPO = 'app';
export const WRITER = 'wendy-writer';
export const READER = 'rita-reader';
export const BOT = 'stagegate-bot';
export const BODY_LIMIT = 64 * 1024;
export const APP_ID = 4711;
/** Who writes as the App (its installation's bot). */
export const APP_BOT = 'stagegate[bot]';
const TOKEN = 'ghp_stagegate_test_token_0001';

export interface GitHubServeHarness {
  server: TestNatsServer;
  nc: NatsConnection;
  client: TaskClient;
  github: FakeGitHub;
  config: Readonly<Config>;
  serve: RunningServe;
  /** Posts a signed delivery (or the one given) to POST /webhooks/github. */
  send(event: string, payload: unknown, options?: { id?: string; signature?: string | null }): Promise<{ status: number; json: Record<string, unknown>; delivery: Delivery }>;
  /** The tasks started for this issue of acme/app. */
  tasksFor(issueNumber: number): Promise<TaskRecord[]>;
  /** Waits for the issue's latest task, in a state `accept` accepts. */
  taskAt(issueNumber: number, accept: (state: string) => boolean, what: string): Promise<TaskRecord>;
  /** Stops serve and the orchestrator and starts them again (serve on its port): what is left is what NATS holds. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface GitHubServeOptions {
  agents?: Parameters<typeof startCannedAgents>[1];
  gates?: Record<string, unknown>;
  /** More of the config file: `limits`, `model.pricing`. */
  settings?: Record<string, unknown>;
  /** The clock of serve (its limits) and of the agents' results; the system clock by default. */
  now?: () => Date;
  /** The model the agents' results name, as a worker's does. */
  model?: string;
  /** Authenticate as a GitHub App installed on acme/app instead of with a token. */
  app?: boolean;
  /** `github.ci` settings over the harness's: off, since most stand-in coders name commits that do not exist. */
  ci?: Record<string, unknown>;
}

export async function startGitHubServe(options: GitHubServeOptions = {}): Promise<GitHubServeHarness> {
  const silent = pino({ level: process.env.SG_TEST_LOG ?? 'silent' });
  const server = await startTestNatsServer();
  const nc = await connectBus(server.url, 'test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 3, updateExisting: true });
  const keys = options.app === true ? generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }) : undefined;
  const github = await startFakeGitHub({ userTokens: { [TOKEN]: BOT }, ...(keys === undefined ? {} : { app: { id: APP_ID, publicKey: keys.publicKey } }) });
  await github.addRepo({ owner: OWNER, repo: REPO });
  github.setPermission(OWNER, REPO, WRITER, 'write');
  github.setPermission(OWNER, REPO, READER, 'read');
  github.setPermission(OWNER, REPO, BOT, 'write');

  const dir = await mkdtemp(join(tmpdir(), 'sg-github-serve-'));
  const file = join(dir, 'stagegate.json');
  const keyFile = join(dir, 'app.pem');
  if (keys !== undefined) await writeFile(keyFile, keys.privateKey);
  const auth = keys === undefined ? { GITHUB_TOKEN: TOKEN } : { GITHUB_APP_ID: String(APP_ID), GITHUB_APP_PRIVATE_KEY: keyFile };
  await writeFile(
    file,
    JSON.stringify({ github: { botLogin: BOT, ci: { enabled: false, ...options.ci } }, serve: { bodyLimitBytes: BODY_LIMIT }, ...(options.gates === undefined ? {} : { gates: options.gates }), ...options.settings }),
  );
  const config = loadConfig({
    file,
    env: {
      NATS_URL: server.url,
      ...auth,
      GITHUB_API_URL: github.url,
      GITHUB_GIT_URL: github.gitUrl,
      GITHUB_WEBHOOK_SECRET: SECRET,
      STAGEGATE_GITHUB_PACE_WRITES: 'false',
      STAGEGATE_PLAN_APPROVERS: 'github-permission:write',
      STAGEGATE_REVIEW_APPROVERS: 'github-permission:write',
      STAGEGATE_DEPLOY_APPROVERS: 'github-permission:maintain',
    },
  });
  const startOrchestratorHere = () => startOrchestrator({ nc, log: silent, pricing: config.model.pricing });
  let orchestrator: RunningOrchestrator = await startOrchestratorHere();
  const agents: RunningWorker[] = await startCannedAgents(nc, options.agents, {
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.model === undefined ? {} : { model: options.model }),
  });
  const client = await createTaskClient(nc, options.now === undefined ? {} : { now: options.now });
  const startServeHere = (port: number) => startServe({ config, nc, log: silent, port, ...(options.now === undefined ? {} : { now: options.now }) });
  let serve = await startServeHere(0);

  // KV key listing may name a key twice when it is written during the listing: one record per task.
  const tasksFor = async (issueNumber: number) => [
    ...new Map(
      (await client.list())
        .filter((r) => r.context.spec.source?.owner === OWNER && r.context.spec.source.repo === REPO && r.context.spec.source.issueNumber === issueNumber)
        .map((r) => [r.context.taskId, r]),
    ).values(),
  ];

  return {
    server,
    nc,
    client,
    github,
    config,
    get serve() {
      return serve;
    },
    async send(event, payload, sendOptions = {}) {
      const d = delivery(event, payload, SECRET, sendOptions);
      return { ...(await post(`${serve.url}/webhooks/github`, d)), delivery: d };
    },
    tasksFor,
    taskAt: (issueNumber, accept, what) =>
      waitFor(`the task of issue #${issueNumber} ${what}`, async () => {
        const record = (await tasksFor(issueNumber)).at(-1);
        return record !== undefined && accept(record.state) ? record : undefined;
      }),
    async restart() {
      // Tasks clone through the gateway URL they were given: serve comes back on the same port.
      const port = Number(new URL(serve.url).port);
      await serve.stop();
      await orchestrator.stop();
      orchestrator = await startOrchestratorHere();
      serve = await startServeHere(port);
    },
    async stop() {
      await serve.stop();
      await Promise.all(agents.map((a) => a.stop()));
      await orchestrator.stop();
      await nc.drain();
      await github.close();
      await server.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
