/**
 * Configured secret values kept off the outside services, at each client's own boundary: the
 * model request (the OpenAI SDK against the scripted model), GitHub writes (Octokit against the
 * fake GitHub), Slack messages (the WebClient against the fake Slack API); and the redactor itself.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webApi } from '@slack/bolt';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, ModelConfig } from '../../../core/config.js';
import { createGitHubClient } from '../../../core/github/client.js';
import { createLogger } from '../../../core/log.js';
import { createTurnClient } from '../../../core/model/turn.js';
import { startScriptedModelServer } from '../../../core/scripted-model/index.js';
import { createSecretRedactor, REDACTED, secretValuesOf } from '../../../core/security/redact-secrets.js';
import { redactedSlackFetch } from '../../../orchestrator/channels/slack/redacted-fetch.js';
import { startFakeGitHub } from '../../fakes/github/server.js';
import { startFakeSlackApi } from '../../fakes/slack-api.js';
import { PRIVATE_KEY_PEM } from '../../helpers/fake-secrets.js';

const log = createLogger({ level: 'silent' });
const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('secret redactor', () => {
  it('collects every configured credential, the App key line by line, from PEM text with escaped newlines or from its file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sg-redact-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    const keyFile = join(dir, 'app.pem');
    await writeFile(keyFile, PRIVATE_KEY_PEM);
    const keyLines = PRIVATE_KEY_PEM.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
    const env = {
      OPENAI_API_KEY: 'sk-model-key-1234',
      GITHUB_APP_ID: '7',
      GITHUB_WEBHOOK_SECRET: 'hook-secret-5678',
      SLACK_BOT_TOKEN: 'xoxb-bot-token-1',
      SLACK_SIGNING_SECRET: 'signing-secret-2',
      SLACK_CHANNEL: '#gates',
      STAGEGATE_API_TOKENS: 'api:ci=api-token-000000000001',
    };

    const fromFile = secretValuesOf(loadConfig({ env: { ...env, GITHUB_APP_PRIVATE_KEY: keyFile } }));
    const fromText = secretValuesOf(loadConfig({ env: { ...env, GITHUB_APP_PRIVATE_KEY: PRIVATE_KEY_PEM.replaceAll('\n', '\\n') } }));

    const others = ['sk-model-key-1234', 'hook-secret-5678', 'xoxb-bot-token-1', 'signing-secret-2', 'api-token-000000000001'];
    expect(new Set(fromFile)).toEqual(new Set([...others, ...keyLines]));
    expect(new Set(fromText)).toEqual(new Set([...others, ...keyLines]));
  });

  it('replaces values in every string of a nested value, the longer of two overlapping values whole, and leaves the input as it was', () => {
    const redact = createSecretRedactor(['token-abcdefgh', 'token-abcdefgh-long', 'short']);
    const input = { text: 'use token-abcdefgh-long and token-abcdefgh', list: ['x token-abcdefgh y', 3, null], deep: { short: 'a short word' } };

    const out = redact(input);

    expect(out).toEqual({ text: `use ${REDACTED} and ${REDACTED}`, list: [`x ${REDACTED} y`, 3, null], deep: { short: 'a short word' } });
    expect(input.text).toBe('use token-abcdefgh-long and token-abcdefgh');
  });
});

describe('redaction at the outside services', () => {
  it('sends no model request carrying the model key, in the conversation or anywhere else in the body', async () => {
    const apiKey = 'sk-model-key-should-stay-home';
    const model = await startScriptedModelServer({ script: { answers: {} } });
    closers.push(() => model.close());
    model.enqueue('coder', { output: [{ type: 'message', id: 'm1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'ok', annotations: [] }] }] });
    const client = createTurnClient(ModelConfig.parse({ apiKey, baseUrl: model.url, maxRetries: 0 }), 'coder', log);

    await client.runTurn({ taskId: 't-1', instructions: 'You are the coder.', tools: [], input: [{ type: 'message', role: 'user', content: `the tool printed OPENAI_API_KEY=${apiKey}` }] });

    const sent = JSON.stringify(model.requests[0]?.body);
    expect(sent).toContain(`OPENAI_API_KEY=${REDACTED}`);
    expect(sent).not.toContain(apiKey);
  });

  it('writes no GitHub issue or comment carrying a configured secret, and still authenticates with the token', async () => {
    const token = 'ghp_configuredTokenForTheTest00000001';
    const fake = await startFakeGitHub({ userTokens: { [token]: 'stagegate-bot' } });
    closers.push(() => fake.close());
    await fake.addRepo({ owner: 'acme', repo: 'app' });
    const config = loadConfig({ env: { GITHUB_TOKEN: token, GITHUB_API_URL: fake.url, STAGEGATE_GITHUB_PACE_WRITES: 'false' } }).github;
    const github = createGitHubClient(config, log, { retries: 0, redact: createSecretRedactor([token, 'xoxb-slack-token-9']) });

    const issue = await github.octokit.rest.issues.create({ owner: 'acme', repo: 'app', title: `leak ${token}`, body: 'nothing' });
    await github.octokit.rest.issues.createComment({ owner: 'acme', repo: 'app', issue_number: issue.data.number, body: `token ${token}, slack xoxb-slack-token-9` });

    const repo = fake.state.repo('acme', 'app');
    expect(repo?.issues.get(issue.data.number)?.title).toBe(`leak ${REDACTED}`);
    expect(repo?.comments.map((c) => c.body)).toEqual([`token ${REDACTED}, slack ${REDACTED}`]);
  });

  it('posts no Slack message carrying a configured secret, and still authenticates with the bot token', async () => {
    const botToken = 'xoxb-the-bot-token-1';
    const slack = await startFakeSlackApi({ botToken, expect: ['chat.postMessage'] });
    closers.push(() => slack.close());
    const web = new webApi.WebClient(botToken, { slackApiUrl: slack.url, retryConfig: { retries: 0 }, fetch: redactedSlackFetch(createSecretRedactor([botToken, 'api-token-000000000001'])) });

    await web.chat.postMessage({
      channel: '#gates',
      text: `plan: use ${botToken}`,
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'token api-token-000000000001 & more' } }],
    });

    const [call] = slack.callsOf('chat.postMessage');
    expect(call?.token).toBe(botToken);
    expect(call?.args.text).toBe(`plan: use ${REDACTED}`);
    expect(call?.args.blocks).toEqual([{ type: 'section', text: { type: 'mrkdwn', text: `token ${REDACTED} & more` } }]);
    expect(slack.unexpected).toEqual([]);
  });
});
