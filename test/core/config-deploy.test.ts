import { describe, expect, it } from 'vitest';
import { deploySettingsOf, loadConfig } from '../../core/config.js';

describe('GitHub deploy and git gateway configuration', () => {
  it('deploys GitHub tasks by merging, waiting up to 30 minutes and looking every 10 seconds, when nothing is set', () => {
    const { github } = loadConfig({ env: {} });

    expect(github.deploy).toBeUndefined();
    expect(github.gatewayUrl).toBeUndefined();
    expect(deploySettingsOf(github)).toEqual({
      strategy: 'merge',
      mergeMethod: 'merge',
      requiredChecks: [],
      inputs: {},
      environment: 'production',
      timeoutMs: 1_800_000,
      pollMs: 10_000,
    });
  });

  it('reads the strategy, its settings and the gateway URL from the environment', () => {
    const { github } = loadConfig({
      env: {
        STAGEGATE_GIT_GATEWAY_URL: 'https://stagegate.internal/git',
        STAGEGATE_DEPLOY_STRATEGY: 'workflow',
        STAGEGATE_DEPLOY_WORKFLOW: 'deploy.yml',
        STAGEGATE_DEPLOY_REF: 'main',
        STAGEGATE_DEPLOY_REQUIRED_CHECKS: 'build, test',
        STAGEGATE_DEPLOY_WAIT_MS: '600000',
        STAGEGATE_DEPLOY_POLL_MS: '5000',
      },
    });

    expect(github.gatewayUrl).toBe('https://stagegate.internal/git');
    expect(deploySettingsOf(github)).toMatchObject({ strategy: 'workflow', workflow: 'deploy.yml', ref: 'main', requiredChecks: ['build', 'test'], timeoutMs: 600_000, pollMs: 5_000 });
  });

  it("keeps the deploy stage's timeout and how long a deploy waits for GitHub apart", () => {
    const stage = loadConfig({ env: { STAGEGATE_DEPLOY_TIMEOUT_MS: '7200000' } });
    expect(stage.stageTimeoutsMs).toEqual({ deploy: 7_200_000 });
    expect(deploySettingsOf(stage.github).timeoutMs).toBe(1_800_000);
    const wait = loadConfig({ env: { STAGEGATE_DEPLOY_WAIT_MS: '600000' } });
    expect(deploySettingsOf(wait.github).timeoutMs).toBe(600_000);
    expect(wait.stageTimeoutsMs ?? {}).toEqual({});
  });

  it('refuses the workflow strategy without a workflow to dispatch', () => {
    expect(() => loadConfig({ env: { STAGEGATE_DEPLOY_STRATEGY: 'workflow' } })).toThrow(
      "invalid configuration: config: 'github.deploy.workflow' expected the workflow to dispatch (a file name such as deploy.yml, or an id) with strategy 'workflow'",
    );
  });

  it('names the variable of an unknown strategy', () => {
    expect(() => loadConfig({ env: { STAGEGATE_DEPLOY_STRATEGY: 'ftp' } })).toThrow(/STAGEGATE_DEPLOY_STRATEGY/);
  });
});
