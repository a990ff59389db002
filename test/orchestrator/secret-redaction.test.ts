/**
 * Configured secret values kept out of the task log and the jobs, over a real nats-server: the
 * orchestrator publishes audit entries and jobs without the secrets it holds, and a worker its
 * results and progress without its own (the planner is the real handler, the model scripted).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configForRole, createHandler } from '../../cli/agent-handlers.js';
import { createSampleRepo } from '../../cli/demo/sample-repo.js';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { startJobWorker, type RunningWorker } from '../../core/bus/job-worker.js';
import { STAGE_OF_ROLE, type Plan, type TaskLogEntry } from '../../core/bus/messages.js';
import { ensureTopology } from '../../core/bus/topology.js';
import { loadConfig } from '../../core/config.js';
import { createLogger } from '../../core/log.js';
import type { GatePolicy } from '../../core/policy.js';
import { startScriptedModelServer, type ScriptedModelServer } from '../../core/scripted-model/index.js';
import { createSecretRedactor, REDACTED, secretValuesOf } from '../../core/security/redact-secrets.js';
import { startOrchestrator, type RunningOrchestrator } from '../../orchestrator/orchestrator.js';
import { createTaskClient, type TaskClient } from '../../orchestrator/task-client.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait-for.js';

const MODEL_KEY = 'sk-model-key-for-the-redaction-test';
const API_TOKEN = 'api-token-for-the-redaction-test';
const manual: GatePolicy = { approvers: ['tester'], required: 1, autoApprove: false };

let server: TestNatsServer;
let model: ScriptedModelServer;
let nc: NatsConnection;
let client: TaskClient;
let orchestrator: RunningOrchestrator;
let planner: RunningWorker;

beforeAll(async () => {
  server = await startTestNatsServer();
  model = await startScriptedModelServer({ script: { answers: {} } });
  nc = await connectBus(server.url, 'secret-redaction-test');
  await ensureTopology(nc, { jobAckWaitMs: 30_000, jobMaxDeliveries: 1, updateExisting: true });
  const config = loadConfig({
    env: {
      NATS_URL: server.url,
      OPENAI_API_KEY: MODEL_KEY,
      OPENAI_BASE_URL: model.url,
      STAGEGATE_API_TOKENS: `api:ci=${API_TOKEN}`,
      STAGEGATE_WORK_DIR: join(await mkdtemp(join(tmpdir(), 'sg-redaction-')), 'work'),
      STAGEGATE_USER: 'tester',
      STAGEGATE_MODEL_MAX_RETRIES: '0',
    },
  });
  const log = createLogger({ level: 'silent' });
  orchestrator = await startOrchestrator({ nc, log, redact: createSecretRedactor(secretValuesOf(config)) });
  const plannerConfig = configForRole('planner', config);
  planner = await startJobWorker({
    nc,
    role: 'planner',
    stage: STAGE_OF_ROLE.planner,
    handle: createHandler('planner', plannerConfig, log, undefined),
    log,
    concurrency: 1,
    ackWaitMs: config.jobs.ackWaitMs,
    maxDeliveries: config.jobs.maxDeliveries,
    redact: createSecretRedactor(secretValuesOf(plannerConfig)),
  });
  client = await createTaskClient(nc);
});

afterAll(async () => {
  await planner?.stop();
  await orchestrator?.stop();
  await nc?.drain();
  await model?.close();
  await server?.cleanup();
});

async function logOf(taskId: string): Promise<TaskLogEntry[]> {
  const entries: TaskLogEntry[] = [];
  for await (const entry of client.logs(taskId)) entries.push(entry);
  return entries;
}

describe('configured secrets on the bus', () => {
  it('never reach the task log or a job: the orchestrator takes out what it holds, the planner what it holds', async () => {
    const plan: Plan = {
      summary: `Call the API with ${MODEL_KEY} as the model told us.`,
      steps: [{ title: 'Rotate', detail: 'rotate the token' }],
      filesToTouch: ['README.md'],
      risks: [],
      acceptanceChecks: [],
    };
    model.enqueue('planner', { json: plan });
    const repo = await createSampleRepo(join(await mkdtemp(join(tmpdir(), 'sg-redaction-repo-')), 'textkit'));

    const taskId = await client.submit({
      spec: { repo, title: `Rotate the token ${API_TOKEN}`, body: '', base: 'main', submittedBy: 'tester' },
      policies: { plan: manual, review: manual, deploy: manual },
      maxReviewRounds: 1,
    });
    await waitFor(`task ${taskId} at the plan gate`, async () => ((await client.get(taskId).catch(() => undefined))?.state === 'awaitingPlanApproval' ? true : undefined));
    const entries = await waitFor('the plan in the task log', async () => {
      const all = await logOf(taskId);
      return all.some((e) => e.type === 'task.event' && e.event.type === 'plan.proposed') ? all : undefined;
    });

    const logText = JSON.stringify(entries);
    expect(logText).not.toContain(API_TOKEN);
    expect(logText).not.toContain(MODEL_KEY);
    expect(logText).toContain(`Rotate the token ${REDACTED}`);
    expect(logText).toContain(`Call the API with ${REDACTED} as the model told us.`);
    // The planner got the job without the orchestrator's secret, so its model never saw it either.
    const sent = JSON.stringify(model.requests.filter((r) => r.taskId === taskId).map((r) => r.body));
    expect(sent).toContain(`Rotate the token ${REDACTED}`);
    expect(sent).not.toContain(API_TOKEN);
  });
});
