import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.js';
import { isStagegateError } from '../../core/errors.js';

function configError(env: Record<string, string>, file?: string): string {
  try {
    loadConfig({ env, ...(file === undefined ? {} : { file }) });
  } catch (err) {
    if (isStagegateError(err, 'CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('GitHub configuration', () => {
  it('defaults to the public API and github.com for git, the stagegate label and write permission for commands', () => {
    const { github } = loadConfig({ env: {} });

    expect(github).toEqual({
      apiUrl: 'https://api.github.com',
      gitUrl: 'https://github.com',
      label: 'stagegate',
      commandPermission: 'write',
      permissionCacheMs: 60_000,
      reviewBots: [],
      skipMarker: '[skip stagegate]',
      maxReviewerRounds: 3,
      paceWrites: true,
      ci: { enabled: true, maxFixAttempts: 3, onRedBase: 'wait', pollMs: 60_000, noChecksAfterMs: 120_000, logTailChars: 8_000 },
    });
  });

  it('reads a token, the webhook secret, the label and the command permission from the environment', () => {
    const { github } = loadConfig({
      env: {
        GITHUB_TOKEN: 'ghp_example',
        GITHUB_WEBHOOK_SECRET: 'shh',
        STAGEGATE_GITHUB_LABEL: 'ai-task',
        STAGEGATE_GITHUB_COMMAND_PERMISSION: 'maintain',
        STAGEGATE_GITHUB_PACE_WRITES: 'false',
      },
    });

    expect(github).toMatchObject({ token: 'ghp_example', webhookSecret: 'shh', label: 'ai-task', commandPermission: 'maintain', paceWrites: false });
  });

  it('reads the review bots allow-list, the skip marker and the reviewer rounds from the environment', () => {
    const { github } = loadConfig({
      env: { STAGEGATE_GITHUB_REVIEW_BOTS: 'lint-helper[bot], style[bot]', STAGEGATE_GITHUB_SKIP_MARKER: '[no bot]', STAGEGATE_GITHUB_MAX_REVIEWER_ROUNDS: '5' },
    });

    expect(github).toMatchObject({ reviewBots: ['lint-helper[bot]', 'style[bot]'], skipMarker: '[no bot]', maxReviewerRounds: 5 });
  });

  it('refuses a negative number of reviewer rounds, naming the variable', () => {
    expect(configError({ STAGEGATE_GITHUB_MAX_REVIEWER_ROUNDS: '-1' })).toContain('STAGEGATE_GITHUB_MAX_REVIEWER_ROUNDS');
  });

  it('takes a GitHub App by id and private key, the key as given (PEM text or a path)', () => {
    const { github } = loadConfig({ env: { GITHUB_APP_ID: '4242', GITHUB_APP_PRIVATE_KEY: '/etc/stagegate/app.pem' } });

    expect(github).toMatchObject({ appId: 4242, privateKey: '/etc/stagegate/app.pem' });
    expect(github.token).toBeUndefined();
  });

  it('serves git from the API host for GitHub Enterprise, unless GITHUB_GIT_URL says otherwise', () => {
    expect(loadConfig({ env: { GITHUB_API_URL: 'https://ghe.example.com/api/v3/' } }).github).toMatchObject({
      apiUrl: 'https://ghe.example.com/api/v3',
      gitUrl: 'https://ghe.example.com',
    });
    expect(loadConfig({ env: { GITHUB_API_URL: 'https://ghe.example.com/api/v3', GITHUB_GIT_URL: 'https://git.example.com/' } }).github.gitUrl).toBe(
      'https://git.example.com',
    );
  });

  it('reads botLogin and permissionCacheMs from the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-config-github-'));
    const file = join(dir, 'stagegate.json');
    writeFileSync(file, JSON.stringify({ github: { botLogin: 'stagegate[bot]', permissionCacheMs: 5000, label: 'from-file' } }));

    const { github } = loadConfig({ env: { STAGEGATE_GITHUB_LABEL: 'from-env' }, file });

    expect(github).toMatchObject({ botLogin: 'stagegate[bot]', permissionCacheMs: 5000, label: 'from-env' });
  });

  it('refuses a token and an App together, naming both', () => {
    const message = configError({ GITHUB_TOKEN: 'ghp_example', GITHUB_APP_ID: '4242', GITHUB_APP_PRIVATE_KEY: '/app.pem' });

    expect(message).toContain('GITHUB_TOKEN');
    expect(message).toContain('GITHUB_APP_ID');
    expect(message).toContain('not both');
  });

  it('wants the App id and private key together', () => {
    expect(configError({ GITHUB_APP_ID: '4242' })).toContain('GITHUB_APP_PRIVATE_KEY');
    expect(configError({ GITHUB_APP_PRIVATE_KEY: '/app.pem' })).toContain('GITHUB_APP_ID');
  });

  it('names the variable of an invalid value', () => {
    expect(configError({ GITHUB_APP_ID: 'abc', GITHUB_APP_PRIVATE_KEY: '/app.pem' })).toContain('GITHUB_APP_ID expected the App id, a whole number');
    expect(configError({ GITHUB_API_URL: 'not a url' })).toContain('GITHUB_API_URL expected a URL');
    expect(configError({ STAGEGATE_GITHUB_COMMAND_PERMISSION: 'owner' })).toContain('STAGEGATE_GITHUB_COMMAND_PERMISSION');
  });
});
