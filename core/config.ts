/**
 * Configuration: defaults, then an optional JSON file, then the environment. Parsed once by
 * `loadConfig`, which takes the environment as an argument; only a `main` passes process.env.
 * An invalid value is reported with the env variable or file field it came from.
 */
import { readFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { StagegateError } from './errors.js';
import { GatePolicies } from './policy.js';
import { AgentRole, Stage } from './bus/messages.js';

const positiveInt = z.coerce.number<unknown>().int('expected a whole number').positive('expected a number above 0');
const nonNegativeInt = z.coerce.number<unknown>().int('expected a whole number').nonnegative('expected 0 or more');

const positiveNumber = z.coerce.number<unknown>().positive('expected a number above 0');
/** A boolean, from JSON or from env as true/false/1/0. */
const flag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')], {
  error: 'expected true or false',
});
const share = z.coerce.number<unknown>().gt(0, 'expected a share above 0').lt(1, 'expected a share below 1');

export const ModelPrice = z.object({
  inputPerMTok: z.number().nonnegative(),
  cachedInputPerMTok: z.number().nonnegative(),
  outputPerMTok: z.number().nonnegative(),
});
export type ModelPrice = z.infer<typeof ModelPrice>;

/** Commands that stop the coder at the command gate until a person approves them. */
export const DEFAULT_REQUIRE_APPROVAL = ['git push', 'npm install', 'npm i', 'pnpm add', 'yarn add', 'pip install', 'curl', 'wget'];

/** The coder's agent loop: its limits per job, context management and sandbox. */
export const CoderConfig = z.object({
  maxTurns: positiveInt.default(60),
  /** Input plus output tokens over every model call of one job; absent: no limit. */
  maxTokens: positiveInt.optional(),
  /** Needs `model.pricing` for the coder's model; absent: no limit. */
  maxCostUsd: positiveNumber.optional(),
  wallClockMs: positiveInt.default(1_800_000),
  contextWindowTokens: positiveInt.default(200_000),
  /** Share of the context window at which older turns are summarised. */
  compactAt: share.default(0.8),
  /** Turns kept verbatim when the conversation is compacted. */
  keepRecentTurns: nonNegativeInt.default(6),
  requireApproval: z.array(z.string().min(1)).default(DEFAULT_REQUIRE_APPROVAL),
  /** Run commands without bwrap when it is missing (the process's own rights: trusted repositories only). */
  allowUnsandboxed: flag.default(false),
  shellTimeoutMs: positiveInt.default(120_000),
  /** Characters of a command's output the model is shown; past it the middle is elided. */
  outputLimit: positiveInt.default(16_000),
});
export type CoderConfig = z.infer<typeof CoderConfig>;

/** Per endpoint and model, in each process (core/model/limiter.ts); absent: no limit. */
export const ModelLimits = z.strictObject({
  requestsPerMinute: positiveNumber.optional(),
  tokensPerMinute: positiveNumber.optional(),
  maxConcurrency: positiveInt.optional(),
});
export type ModelLimits = z.infer<typeof ModelLimits>;

export const ModelConfig = z.object({
  apiKey: z.string().min(1).optional(),
  baseUrl: z.url('expected a URL such as https://api.openai.com/v1').optional(),
  model: z.string().min(1).default('gpt-5.1-codex'),
  roleModels: z.partialRecord(AgentRole, z.string().min(1)).default({}),
  maxRetries: nonNegativeInt.default(2),
  timeoutMs: positiveInt.default(600_000),
  /** `responses` (the OpenAI Responses API) or `chat` (servers that only speak Chat Completions). */
  wireApi: z.enum(['responses', 'chat']).default('responses'),
  /** USD per million tokens, by model name: what `coder.maxCostUsd` is measured with. */
  pricing: z.record(z.string().min(1), ModelPrice).default({}),
  /** Rate limits by model name, `*` for any other; calls over them queue. */
  limits: z.record(z.string().min(1), ModelLimits).default({}),
  /** Times a call is sent again after a 429, waiting as long as Retry-After asks. */
  rateLimitRetries: nonNegativeInt.default(5),
});
export type ModelConfig = z.infer<typeof ModelConfig>;

/** The longest trigger window: counts are kept in a bucket whose entries live a little longer (core/bus/topology.ts). */
export const MAX_LIMIT_WINDOW_MS = 7 * 24 * 60 * 60_000;

/**
 * Abuse and cost limits, checked before a task starts (a GitHub label, `/retry`, `stagegate
 * submit` and `retry`, the HTTP API); each one absent is no limit. Spend is model usage priced
 * with `model.pricing`, counted per UTC day.
 */
export const LimitsConfig = z.strictObject({
  /** Tasks one person may start (or retry) per window. */
  triggersPerUser: positiveInt.optional(),
  /** Tasks that may be started (or retried) on one repository per window. */
  triggersPerRepo: positiveInt.optional(),
  /** The trigger window: fixed, aligned to the epoch (an hour: each whole UTC hour). */
  windowMs: positiveInt.max(MAX_LIMIT_WINDOW_MS, 'expected at most 604800000 (7 days)').default(3_600_000),
  /** Tasks of one repository not yet done, failed or cancelled. */
  concurrentTasksPerRepo: positiveInt.optional(),
  dailySpendUsdPerRepo: positiveNumber.optional(),
  /** Per owner: a GitHub organisation or user, over all its repositories. */
  dailySpendUsdPerOrg: positiveNumber.optional(),
});
export type LimitsConfig = z.infer<typeof LimitsConfig>;

/** `stagegate serve`: the HTTP server for the API, Slack's HTTP mode and webhooks. */
export const ServeConfig = z.object({
  port: z.coerce.number<unknown>().int('expected a port number from 0 to 65535').min(0).max(65535, 'expected a port number from 0 to 65535').default(8787),
  /** Loopback by default; set 0.0.0.0 (or put a reverse proxy in front) for Slack and GitHub to reach it. */
  host: z.string().min(1).default('127.0.0.1'),
  /** Largest request body accepted, in bytes; larger ones get 413. */
  bodyLimitBytes: positiveInt.default(1_048_576),
});
export type ServeConfig = z.infer<typeof ServeConfig>;

/** A bearer token of the HTTP API and the principal it acts as (`api:deploy-bot`). */
export const ApiToken = z.object({
  token: z.string().min(16, 'expected a token of at least 16 characters'),
  principal: z.string().min(1, 'expected a principal such as api:deploy-bot'),
});
export type ApiToken = z.infer<typeof ApiToken>;

export const ApiConfig = z.object({ tokens: z.array(ApiToken).default([]) }).superRefine((api, ctx) => {
  api.tokens.forEach((t, i) => {
    if (api.tokens.findIndex((o) => o.token === t.token) !== i) {
      ctx.addIssue({ code: 'custom', path: ['tokens', i, 'token'], message: `expected a token of its own (the same token is given to ${api.tokens.find((o) => o.token === t.token)?.principal})` });
    }
  });
});
export type ApiConfig = z.infer<typeof ApiConfig>;

/**
 * The Slack channel, on when a bot token is set: Socket Mode with an app token, else HTTP mode
 * (`POST /slack/events` on `serve`) with the signing secret.
 */
export const SlackConfig = z
  .object({
    botToken: z.string().regex(/^xox[bp]-/, 'expected a bot token (xoxb-…)').optional(),
    signingSecret: z.string().min(1).optional(),
    appToken: z.string().regex(/^xapp-/, 'expected an app-level token (xapp-…)').optional(),
    apiUrl: z.url('expected a URL such as https://slack.com/api/').default('https://slack.com/api/'),
    /** Where gate messages go: a channel id (C0123…) or name. */
    channel: z.string().min(1).optional(),
  })
  .superRefine((slack, ctx) => {
    if (slack.botToken === undefined) {
      if (slack.signingSecret !== undefined || slack.appToken !== undefined || slack.channel !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['botToken'], message: 'expected SLACK_BOT_TOKEN: other Slack settings are set without it' });
      }
      return;
    }
    if (slack.channel === undefined) {
      ctx.addIssue({ code: 'custom', path: ['channel'], message: 'expected SLACK_CHANNEL, the channel gate messages go to' });
    }
    if (slack.signingSecret === undefined && slack.appToken === undefined) {
      ctx.addIssue({ code: 'custom', path: ['signingSecret'], message: 'expected SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)' });
    }
  });
export type SlackConfig = z.infer<typeof SlackConfig>;

/** A repository permission, lowest first (GitHub's `permission` field of a collaborator). */
export const GitHubPermission = z.enum(['read', 'triage', 'write', 'maintain', 'admin']);
export type GitHubPermission = z.infer<typeof GitHubPermission>;

const PUBLIC_GITHUB_API = 'https://api.github.com';

/**
 * How the deployer ships a task that came from a GitHub issue (tasks from elsewhere merge and
 * push locally): `merge` waits for the pull request's checks and merges it, `workflow` runs a
 * `workflow_dispatch` workflow and waits for its conclusion, `deployment` creates a GitHub
 * Deployment and waits for its status. Every wait is bounded by `timeoutMs`, counted from when the
 * deploy job was sent, so a redelivered job does not start the clock again.
 */
export const GitHubDeployConfig = z
  .object({
    strategy: z.enum(['merge', 'workflow', 'deployment']).default('merge'),
    mergeMethod: z.enum(['merge', 'squash', 'rebase']).default('merge'),
    /** Check runs or status contexts that must be present and green (`merge`); the others present must not fail. */
    requiredChecks: z.array(z.string().min(1)).default([]),
    /** The workflow to dispatch: its file name (`deploy.yml`) or id. */
    workflow: z.string().min(1).optional(),
    /** The ref the workflow runs on or the deployment deploys; default the task's branch. */
    ref: z.string().min(1).optional(),
    /** Workflow inputs; `{taskId}`, `{branch}`, `{commit}` and `{issue}` in a value are filled in. */
    inputs: z.record(z.string().min(1), z.string()).default({}),
    environment: z.string().min(1).default('production'),
    timeoutMs: positiveInt.default(1_800_000),
    pollMs: positiveInt.default(10_000),
  })
  .superRefine((deploy, ctx) => {
    if (deploy.strategy === 'workflow' && deploy.workflow === undefined) {
      ctx.addIssue({ code: 'custom', path: ['workflow'], message: "expected the workflow to dispatch (a file name such as deploy.yml, or an id) with strategy 'workflow'" });
    }
  });
export type GitHubDeployConfig = z.infer<typeof GitHubDeployConfig>;

/** The deploy settings in force: the configured ones, or the defaults (merge) when none are set. */
export function deploySettingsOf(github: { deploy?: GitHubDeployConfig | undefined }): GitHubDeployConfig {
  return github.deploy ?? GitHubDeployConfig.parse({});
}

/**
 * The GitHub channel: a token, or a GitHub App (id and private key, PEM text or a path to a PEM
 * file), never both. The API and git are reached through their URLs, so GitHub Enterprise (API at
 * `https://host/api/v3`, git at the host root) and the tests' fake work like github.com.
 */
/**
 * The CI-fix loop of tasks from GitHub issues: after each approving review the task waits for the
 * checks on its pull request's head; failures go back to the coder. serve reads the checks on
 * each check webhook and polls while a task waits, in case a delivery was missed.
 */
export const GitHubCiConfig = z.object({
  /** Off: tasks go from review straight to the deploy gate (the deployer still waits for checks before merging). */
  enabled: flag.default(true),
  maxFixAttempts: nonNegativeInt.default(3),
  onRedBase: z.enum(['wait', 'proceed']).default('wait'),
  pollMs: positiveInt.default(60_000),
  /** With no check reported this long after the review, the repository is taken to have no CI. */
  noChecksAfterMs: nonNegativeInt.default(120_000),
  /** Characters of a failed GitHub Actions job's log (its end) the coder is shown. */
  logTailChars: positiveInt.default(8_000),
});
export type GitHubCiConfig = z.infer<typeof GitHubCiConfig>;

export const GitHubConfig = z
  .object({
    token: z.string().min(1).optional(),
    appId: z.coerce.number<unknown>({ error: 'expected the App id, a whole number' }).int('expected the App id, a whole number').positive('expected the App id, a whole number').optional(),
    privateKey: z.string().min(1).optional(),
    apiUrl: z.url('expected a URL such as https://api.github.com').default(PUBLIC_GITHUB_API),
    /** Where git clones and pushes; default: https://github.com for the public API, else the API URL's origin. */
    gitUrl: z.url('expected a URL such as https://github.com').optional(),
    webhookSecret: z.string().min(1).optional(),
    /** The label that hands an issue to Stagegate. */
    label: z.string().min(1).default('stagegate'),
    /** The least repository permission a commenter needs for Stagegate to act on a command. */
    commandPermission: GitHubPermission.default('write'),
    /** Our own login (e.g. `stagegate[bot]`), so our comments are never read as commands. */
    botLogin: z.string().min(1).optional(),
    permissionCacheMs: nonNegativeInt.default(60_000),
    /** Bots whose review comments go to the coder like a person's (other bots' are ignored); logins as GitHub shows them. */
    reviewBots: z.array(z.string().min(1)).default([]),
    /** A review comment containing this text is not for Stagegate: the coder never sees it, nothing replies to it. */
    skipMarker: z.string().min(1).default('[skip stagegate]'),
    /** Coder rounds people's review comments may start per task; then the task waits at its gate for a person. */
    maxReviewerRounds: nonNegativeInt.default(3),
    /** Space writes out as GitHub asks (1 s apart, 3 s for ones that notify); off only for tests. */
    paceWrites: flag.default(true),
    /**
     * Where agents clone and push: serve's git gateway (`<serve URL>/git`), which adds a
     * short-lived token scoped to the one repository; default http://127.0.0.1:<serve port>/git.
     */
    gatewayUrl: z.url('expected a URL such as https://stagegate.example.com/git').optional(),
    /** Absent: the defaults (`deploySettingsOf`). */
    deploy: GitHubDeployConfig.optional(),
    ci: GitHubCiConfig.default(GitHubCiConfig.parse({})),
  })
  .superRefine((github, ctx) => {
    const app = github.appId !== undefined || github.privateKey !== undefined;
    if (github.token !== undefined && app) {
      ctx.addIssue({
        code: 'custom',
        path: ['token'],
        message: 'expected either a token (GITHUB_TOKEN, github.token) or a GitHub App (GITHUB_APP_ID, github.appId), not both',
      });
      return;
    }
    if (github.appId !== undefined && github.privateKey === undefined) {
      ctx.addIssue({ code: 'custom', path: ['privateKey'], message: 'expected GITHUB_APP_PRIVATE_KEY (PEM text or a path to a PEM file) with GITHUB_APP_ID' });
    }
    if (github.privateKey !== undefined && github.appId === undefined) {
      ctx.addIssue({ code: 'custom', path: ['appId'], message: 'expected GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY' });
    }
  })
  .transform(({ gitUrl, ...github }) => {
    const apiUrl = github.apiUrl.replace(/\/+$/, '');
    return { ...github, apiUrl, gitUrl: (gitUrl ?? defaultGitUrl(apiUrl)).replace(/\/+$/, '') };
  });
export type GitHubConfig = z.infer<typeof GitHubConfig>;

/** github.com serves git at https://github.com; GitHub Enterprise at the API host's root. */
function defaultGitUrl(apiUrl: string): string {
  return apiUrl === PUBLIC_GITHUB_API ? 'https://github.com' : new URL(apiUrl).origin;
}

export const Config = z
  .object({
    natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    user: z.string().min(1),
    model: ModelConfig.default(ModelConfig.parse({})),
    gates: GatePolicies,
    maxReviewRounds: nonNegativeInt.default(2),
    workDir: z.string().min(1),
    jobs: z
      .object({
        /** How long a job may go without a heartbeat before another worker gets it. */
        ackWaitMs: positiveInt.default(30_000),
        /** Deliveries of one job before the task fails. */
        maxDeliveries: positiveInt.default(3),
      })
      .default({ ackWaitMs: 30_000, maxDeliveries: 3 }),
    coder: CoderConfig.default(CoderConfig.parse({})),
    /** How long each stage's job may run before the stage fails with the reason (absent: no limit). */
    stageTimeoutsMs: z.partialRecord(Stage, positiveInt).default({}),
    commandTimeoutMs: positiveInt.default(600_000),
    serve: ServeConfig.default(ServeConfig.parse({})),
    api: ApiConfig.default({ tokens: [] }),
    slack: SlackConfig.default(SlackConfig.parse({})),
    github: GitHubConfig.default(GitHubConfig.parse({})),
    limits: LimitsConfig.default(LimitsConfig.parse({})),
  })
  .superRefine((config, ctx) => {
    // A spend cap counts nothing without prices: say so at start, not on the day it should have refused.
    if (Object.keys(config.model.pricing).length > 0) return;
    for (const field of ['dailySpendUsdPerRepo', 'dailySpendUsdPerOrg'] as const) {
      if (config.limits[field] === undefined) continue;
      ctx.addIssue({ code: 'custom', path: ['limits', field], message: "needs 'model.pricing' (USD per million tokens of each model used): spend is counted with it" });
    }
  });
export type Config = z.infer<typeof Config>;

type Env = Record<string, string | undefined>;

/**
 * Env variable → config path. Lists are comma separated. A `number` field's schema does not
 * coerce (gate policies are shared with bus messages), so its text is converted here.
 */
const ENV_FIELDS: ReadonlyArray<{ env: string; path: string[]; list?: boolean; number?: boolean }> = [
  { env: 'NATS_URL', path: ['natsUrl'] },
  { env: 'STAGEGATE_LOG_LEVEL', path: ['logLevel'] },
  { env: 'STAGEGATE_USER', path: ['user'] },
  { env: 'OPENAI_API_KEY', path: ['model', 'apiKey'] },
  { env: 'OPENAI_BASE_URL', path: ['model', 'baseUrl'] },
  { env: 'STAGEGATE_MODEL', path: ['model', 'model'] },
  ...AgentRole.options.map((role) => ({
    env: `STAGEGATE_MODEL_${role.toUpperCase()}`,
    path: ['model', 'roleModels', role],
  })),
  { env: 'STAGEGATE_MODEL_MAX_RETRIES', path: ['model', 'maxRetries'] },
  { env: 'STAGEGATE_MODEL_TIMEOUT_MS', path: ['model', 'timeoutMs'] },
  { env: 'STAGEGATE_MODEL_RPM', path: ['model', 'limits', '*', 'requestsPerMinute'] },
  { env: 'STAGEGATE_MODEL_TPM', path: ['model', 'limits', '*', 'tokensPerMinute'] },
  { env: 'STAGEGATE_MODEL_CONCURRENCY', path: ['model', 'limits', '*', 'maxConcurrency'] },
  { env: 'STAGEGATE_MODEL_RATE_LIMIT_RETRIES', path: ['model', 'rateLimitRetries'] },
  { env: 'STAGEGATE_MAX_REVIEW_ROUNDS', path: ['maxReviewRounds'] },
  ...Stage.options.map((stage) => ({ env: `STAGEGATE_${stage.toUpperCase()}_TIMEOUT_MS`, path: ['stageTimeoutsMs', stage] })),
  { env: 'STAGEGATE_WORK_DIR', path: ['workDir'] },
  { env: 'STAGEGATE_JOB_ACK_WAIT_MS', path: ['jobs', 'ackWaitMs'] },
  { env: 'STAGEGATE_JOB_MAX_DELIVERIES', path: ['jobs', 'maxDeliveries'] },
  { env: 'OPENAI_WIRE_API', path: ['model', 'wireApi'] },
  { env: 'STAGEGATE_CODER_MAX_TURNS', path: ['coder', 'maxTurns'] },
  { env: 'STAGEGATE_CODER_MAX_TOKENS', path: ['coder', 'maxTokens'] },
  { env: 'STAGEGATE_CODER_MAX_COST_USD', path: ['coder', 'maxCostUsd'] },
  { env: 'STAGEGATE_CODER_WALL_CLOCK_MS', path: ['coder', 'wallClockMs'] },
  { env: 'STAGEGATE_REQUIRE_APPROVAL', path: ['coder', 'requireApproval'], list: true },
  { env: 'STAGEGATE_ALLOW_UNSANDBOXED', path: ['coder', 'allowUnsandboxed'] },
  { env: 'STAGEGATE_COMMAND_TIMEOUT_MS', path: ['commandTimeoutMs'] },
  { env: 'STAGEGATE_PORT', path: ['serve', 'port'] },
  { env: 'STAGEGATE_HOST', path: ['serve', 'host'] },
  { env: 'SLACK_BOT_TOKEN', path: ['slack', 'botToken'] },
  { env: 'SLACK_SIGNING_SECRET', path: ['slack', 'signingSecret'] },
  { env: 'SLACK_APP_TOKEN', path: ['slack', 'appToken'] },
  { env: 'SLACK_API_URL', path: ['slack', 'apiUrl'] },
  { env: 'SLACK_CHANNEL', path: ['slack', 'channel'] },
  { env: 'GITHUB_TOKEN', path: ['github', 'token'] },
  { env: 'GITHUB_APP_ID', path: ['github', 'appId'] },
  { env: 'GITHUB_APP_PRIVATE_KEY', path: ['github', 'privateKey'] },
  { env: 'GITHUB_API_URL', path: ['github', 'apiUrl'] },
  { env: 'GITHUB_GIT_URL', path: ['github', 'gitUrl'] },
  { env: 'GITHUB_WEBHOOK_SECRET', path: ['github', 'webhookSecret'] },
  { env: 'STAGEGATE_GITHUB_LABEL', path: ['github', 'label'] },
  { env: 'STAGEGATE_GITHUB_COMMAND_PERMISSION', path: ['github', 'commandPermission'] },
  { env: 'STAGEGATE_GITHUB_PACE_WRITES', path: ['github', 'paceWrites'] },
  { env: 'STAGEGATE_GITHUB_REVIEW_BOTS', path: ['github', 'reviewBots'], list: true },
  { env: 'STAGEGATE_GITHUB_SKIP_MARKER', path: ['github', 'skipMarker'] },
  { env: 'STAGEGATE_GITHUB_MAX_REVIEWER_ROUNDS', path: ['github', 'maxReviewerRounds'], number: true },
  { env: 'STAGEGATE_GIT_GATEWAY_URL', path: ['github', 'gatewayUrl'] },
  { env: 'STAGEGATE_CI', path: ['github', 'ci', 'enabled'] },
  { env: 'STAGEGATE_CI_MAX_FIX_ATTEMPTS', path: ['github', 'ci', 'maxFixAttempts'] },
  { env: 'STAGEGATE_CI_ON_RED_BASE', path: ['github', 'ci', 'onRedBase'] },
  { env: 'STAGEGATE_CI_POLL_MS', path: ['github', 'ci', 'pollMs'] },
  { env: 'STAGEGATE_CI_NO_CHECKS_AFTER_MS', path: ['github', 'ci', 'noChecksAfterMs'] },
  { env: 'STAGEGATE_DEPLOY_STRATEGY', path: ['github', 'deploy', 'strategy'] },
  { env: 'STAGEGATE_DEPLOY_MERGE_METHOD', path: ['github', 'deploy', 'mergeMethod'] },
  { env: 'STAGEGATE_DEPLOY_REQUIRED_CHECKS', path: ['github', 'deploy', 'requiredChecks'], list: true },
  { env: 'STAGEGATE_DEPLOY_WORKFLOW', path: ['github', 'deploy', 'workflow'] },
  { env: 'STAGEGATE_DEPLOY_REF', path: ['github', 'deploy', 'ref'] },
  { env: 'STAGEGATE_DEPLOY_ENVIRONMENT', path: ['github', 'deploy', 'environment'] },
  // Not STAGEGATE_DEPLOY_TIMEOUT_MS: that one is the deploy stage's timeout (stageTimeoutsMs).
  { env: 'STAGEGATE_DEPLOY_WAIT_MS', path: ['github', 'deploy', 'timeoutMs'] },
  { env: 'STAGEGATE_DEPLOY_POLL_MS', path: ['github', 'deploy', 'pollMs'] },
  { env: 'STAGEGATE_LIMIT_TRIGGERS_PER_USER', path: ['limits', 'triggersPerUser'] },
  { env: 'STAGEGATE_LIMIT_TRIGGERS_PER_REPO', path: ['limits', 'triggersPerRepo'] },
  { env: 'STAGEGATE_LIMIT_WINDOW_MS', path: ['limits', 'windowMs'] },
  { env: 'STAGEGATE_LIMIT_CONCURRENT_TASKS_PER_REPO', path: ['limits', 'concurrentTasksPerRepo'] },
  { env: 'STAGEGATE_LIMIT_DAILY_SPEND_USD_PER_REPO', path: ['limits', 'dailySpendUsdPerRepo'] },
  { env: 'STAGEGATE_LIMIT_DAILY_SPEND_USD_PER_ORG', path: ['limits', 'dailySpendUsdPerOrg'] },
  ...(['plan', 'review', 'deploy', 'security'] as const).flatMap((gate) => [
    { env: `STAGEGATE_${gate.toUpperCase()}_APPROVERS`, path: ['gates', gate, 'approvers'], list: true },
    { env: `STAGEGATE_${gate.toUpperCase()}_REQUIRED`, path: ['gates', gate, 'required'], number: true },
  ]),
  { env: 'STAGEGATE_SECURITY_PROTECTED_PATHS', path: ['gates', 'security', 'protectedPaths'], list: true },
];

export interface LoadConfigOptions {
  env: Env;
  /** A JSON config file; defaults to STAGEGATE_CONFIG when that is set. */
  file?: string;
}

export function loadConfig({ env, file }: LoadConfigOptions): Readonly<Config> {
  const configFile = file ?? env.STAGEGATE_CONFIG;
  const raw: Record<string, unknown> = configFile === undefined ? {} : readConfigFile(configFile);
  const fromEnv = new Map<string, string>();
  for (const field of ENV_FIELDS) {
    const value = env[field.env];
    if (value === undefined || value === '') continue;
    setPath(raw, field.path, field.list ? splitList(value) : field.number ? Number(value) : value);
    fromEnv.set(field.path.join('.'), field.env);
  }
  applyAutoApprove(raw, env.STAGEGATE_AUTO_APPROVE, fromEnv);
  applyApiTokens(raw, env, fromEnv, configFile);
  applyDefaults(raw, env);

  const result = Config.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = issue.path.map(String);
      const source = sourceOf(path, fromEnv) ?? `${configFile ?? 'config'}: '${path.join('.')}'`;
      return `${source} ${issue.message}`;
    });
    throw new StagegateError('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, {
      details: { issues: result.error.issues },
    });
  }
  return Object.freeze(result.data);
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new StagegateError('CONFIG_INVALID', `cannot read config file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StagegateError('CONFIG_INVALID', `config file ${path} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new StagegateError('CONFIG_INVALID', `config file ${path}: expected a JSON object at the top`);
  }
  return value as Record<string, unknown>;
}

/** STAGEGATE_AUTO_APPROVE=plan,deploy (or `all`) lets those gates pass on their own. */
function applyAutoApprove(raw: Record<string, unknown>, value: string | undefined, fromEnv: Map<string, string>) {
  if (value === undefined || value === '') return;
  const gates = splitList(value);
  const known = ['plan', 'review', 'deploy'];
  const unknown = gates.filter((g) => g !== 'all' && g !== 'none' && !known.includes(g));
  if (unknown.length > 0) {
    throw new StagegateError(
      'CONFIG_INVALID',
      `invalid configuration: STAGEGATE_AUTO_APPROVE expected gates from plan, review, deploy, all or none; got '${unknown.join(',')}'`,
    );
  }
  for (const gate of known) {
    const on = gates.includes('all') || gates.includes(gate);
    setPath(raw, ['gates', gate, 'autoApprove'], on);
    fromEnv.set(`gates.${gate}.autoApprove`, 'STAGEGATE_AUTO_APPROVE');
  }
}

/**
 * API tokens: STAGEGATE_API_TOKENS=api:deploy-bot=<token>,api:ci=<token> replaces the file's
 * list; a file entry may name an env variable (`tokenEnv`) instead of holding the token.
 */
function applyApiTokens(raw: Record<string, unknown>, env: Env, fromEnv: Map<string, string>, configFile: string | undefined) {
  const value = env.STAGEGATE_API_TOKENS;
  if (value !== undefined && value !== '') {
    const tokens = splitList(value).map((pair) => {
      const at = pair.lastIndexOf('=');
      if (at <= 0 || at === pair.length - 1) {
        throw new StagegateError('CONFIG_INVALID', 'invalid configuration: STAGEGATE_API_TOKENS expected principal=token pairs, comma separated');
      }
      return { principal: pair.slice(0, at), token: pair.slice(at + 1) };
    });
    setPath(raw, ['api', 'tokens'], tokens);
    fromEnv.set('api.tokens', 'STAGEGATE_API_TOKENS');
    return;
  }
  const tokens = getPath(raw, ['api', 'tokens']);
  if (!Array.isArray(tokens)) return;
  tokens.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || !('tokenEnv' in entry) || typeof entry.tokenEnv !== 'string') return;
    const token = env[entry.tokenEnv];
    if (token === undefined || token === '') {
      throw new StagegateError('CONFIG_INVALID', `invalid configuration: ${configFile ?? 'config'}: 'api.tokens[${i}].tokenEnv' names ${entry.tokenEnv}, which is not set`);
    }
    Object.assign(entry, { token });
  });
}

function applyDefaults(raw: Record<string, unknown>, env: Env) {
  if (raw.user === undefined) raw.user = defaultUser(env);
  if (raw.workDir === undefined) raw.workDir = join(tmpdir(), 'stagegate-work');
  // The security group, who may override blocking security findings, is the user too unless configured.
  for (const gate of ['plan', 'review', 'deploy', 'security']) {
    const path = ['gates', gate, 'approvers'];
    if (getPath(raw, path) === undefined) setPath(raw, path, [raw.user]);
  }
}

function defaultUser(env: Env): string {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? 'local';
  }
}

function sourceOf(path: string[], fromEnv: Map<string, string>): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const env = fromEnv.get(path.slice(0, n).join('.'));
    if (env !== undefined) return env;
  }
  return undefined;
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function getPath(obj: Record<string, unknown>, path: string[]): unknown {
  let cur: unknown = obj;
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown) {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1] as string] = value;
}
