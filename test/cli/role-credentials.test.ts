import { describe, expect, it } from 'vitest';
import { configForRole } from '../../cli/agent-handlers.js';
import { loadConfig } from '../../core/config.js';
import { SECRET_ENV_BY_ROLE, dropSecretEnv } from '../../core/exec/secret-env.js';

const env = {
  OPENAI_API_KEY: 'sk-model',
  GITHUB_TOKEN: 'ghp_repo',
  GITHUB_WEBHOOK_SECRET: 'hook-secret',
  SLACK_BOT_TOKEN: 'xoxb-slack',
  SLACK_SIGNING_SECRET: 'slack-signing',
  SLACK_CHANNEL: 'C123',
  STAGEGATE_API_TOKENS: 'api:bot=0123456789abcdef0123',
  STAGEGATE_USER: 'tester',
};

describe('credentials by agent role', () => {
  it('gives a model-using agent the model key and nothing of GitHub, Slack or the API', () => {
    const coder = configForRole('coder', loadConfig({ env }));
    expect(coder.model.apiKey).toBe('sk-model');
    expect(JSON.stringify(coder)).not.toMatch(/ghp_repo|hook-secret|xoxb-slack|slack-signing|0123456789abcdef0123/);
  });

  it('gives the deployer GitHub access and no model, Slack or API secret', () => {
    const deployer = configForRole('deployer', loadConfig({ env }));
    expect(deployer.github.token).toBe('ghp_repo');
    expect(JSON.stringify(deployer)).not.toMatch(/sk-model|hook-secret|xoxb-slack|slack-signing|0123456789abcdef0123/);
  });

  it('drops from the environment every Stagegate credential the role does not use', () => {
    const coderEnv: NodeJS.ProcessEnv = { ...env, PATH: '/usr/bin' };
    dropSecretEnv(coderEnv, SECRET_ENV_BY_ROLE.coder);
    expect(Object.keys(coderEnv).sort()).toEqual(['OPENAI_API_KEY', 'PATH', 'SLACK_CHANNEL', 'STAGEGATE_USER']);
    const deployerEnv: NodeJS.ProcessEnv = { ...env };
    dropSecretEnv(deployerEnv, SECRET_ENV_BY_ROLE.deployer);
    expect(deployerEnv.GITHUB_TOKEN).toBe('ghp_repo');
    expect(deployerEnv.OPENAI_API_KEY).toBeUndefined();
  });
});
