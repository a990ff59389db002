import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type LoadConfigOptions } from '../../core/config.js';
import { isStagegateError, type StagegateError } from '../../core/errors.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'stagegate-config-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeConfigFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function configError(options: LoadConfigOptions): StagegateError {
  try {
    loadConfig(options);
  } catch (err) {
    if (isStagegateError(err)) return err;
    throw err;
  }
  throw new Error('expected loadConfig to throw');
}

const GATES = ['plan', 'review', 'deploy'] as const;

describe('loadConfig', () => {
  it('uses the defaults when the environment sets nothing', () => {
    const config = loadConfig({ env: {} });
    expect(config.natsUrl).toBe('nats://127.0.0.1:4222');
    expect(config.logLevel).toBe('info');
    expect(config.maxReviewRounds).toBe(2);
    expect(config.user).toBe(userInfo().username);
  });

  it('makes the user the only approver of every gate by default', () => {
    const config = loadConfig({ env: { STAGEGATE_USER: 'alice' } });
    for (const gate of GATES) {
      expect(config.gates[gate]).toEqual({ approvers: ['alice'], required: 1, autoApprove: false });
    }
  });

  it('makes the user the security group by default, and takes the group and protected paths from the environment', () => {
    expect(loadConfig({ env: { STAGEGATE_USER: 'alice' } }).gates.security).toEqual({ approvers: ['alice'], required: 1, protectedPaths: [] });
    const config = loadConfig({
      env: { STAGEGATE_USER: 'alice', STAGEGATE_SECURITY_APPROVERS: 'github-team:acme/security, carol', STAGEGATE_SECURITY_REQUIRED: '2', STAGEGATE_SECURITY_PROTECTED_PATHS: 'ops/**,deploy.sh' },
    });
    expect(config.gates.security).toEqual({ approvers: ['github-team:acme/security', 'carol'], required: 2, protectedPaths: ['ops/**', 'deploy.sh'] });
    expect(configError({ env: { STAGEGATE_SECURITY_APPROVERS: 'team:x' } }).message).toContain("STAGEGATE_SECURITY_APPROVERS expected a principal such as");
  });

  it('takes the NATS URL, log level and review rounds from the environment', () => {
    const config = loadConfig({
      env: { NATS_URL: 'nats://bus.internal:4333', STAGEGATE_LOG_LEVEL: 'debug', STAGEGATE_MAX_REVIEW_ROUNDS: '0' },
    });
    expect(config.natsUrl).toBe('nats://bus.internal:4333');
    expect(config.logLevel).toBe('debug');
    expect(config.maxReviewRounds).toBe(0);
  });

  it('takes the model settings from the environment', () => {
    const config = loadConfig({
      env: {
        OPENAI_API_KEY: 'sk-test',
        OPENAI_BASE_URL: 'http://127.0.0.1:9999/v1',
        STAGEGATE_MODEL: 'gpt-test',
        STAGEGATE_MODEL_CODER: 'gpt-coder',
      },
    });
    expect(config.model).toMatchObject({
      apiKey: 'sk-test',
      baseUrl: 'http://127.0.0.1:9999/v1',
      model: 'gpt-test',
      roleModels: { coder: 'gpt-coder' },
    });
  });

  it('reads gate approvers as a comma-separated list', () => {
    const config = loadConfig({ env: { STAGEGATE_USER: 'alice', STAGEGATE_DEPLOY_APPROVERS: 'alice, bob,,carol ' } });
    expect(config.gates.deploy.approvers).toEqual(['alice', 'bob', 'carol']);
    expect(config.gates.plan.approvers).toEqual(['alice']);
  });

  it('reads the approvals a gate requires from the environment as a number', () => {
    const config = loadConfig({ env: { STAGEGATE_DEPLOY_REQUIRED: '2' } });
    expect(config.gates.deploy.required).toBe(2);
    expect(config.gates.plan.required).toBe(1);
  });

  it('turns on auto-approve for the gates STAGEGATE_AUTO_APPROVE lists, and only those', () => {
    const config = loadConfig({ env: { STAGEGATE_AUTO_APPROVE: 'plan,deploy' } });
    expect(GATES.map((gate) => config.gates[gate].autoApprove)).toEqual([true, false, true]);
  });

  it('turns on auto-approve for every gate with STAGEGATE_AUTO_APPROVE=all', () => {
    const config = loadConfig({ env: { STAGEGATE_AUTO_APPROVE: 'all' } });
    expect(GATES.map((gate) => config.gates[gate].autoApprove)).toEqual([true, true, true]);
  });

  it('refuses an unknown gate in STAGEGATE_AUTO_APPROVE, naming the variable and the value', () => {
    const err = configError({ env: { STAGEGATE_AUTO_APPROVE: 'plan,bogus' } });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('STAGEGATE_AUTO_APPROVE');
    expect(err.message).toContain("'bogus'");
  });

  it('refuses a review-round count that is not a number, naming the variable', () => {
    const err = configError({ env: { STAGEGATE_MAX_REVIEW_ROUNDS: 'abc' } });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/STAGEGATE_MAX_REVIEW_ROUNDS .*expected number/);
  });

  it('refuses a required-approvals count below 1, naming the variable', () => {
    const err = configError({ env: { STAGEGATE_PLAN_REQUIRED: '0' } });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('STAGEGATE_PLAN_REQUIRED');
  });

  it('refuses an OPENAI_BASE_URL that is not a URL, naming the variable', () => {
    const err = configError({ env: { OPENAI_BASE_URL: 'not-a-url' } });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('OPENAI_BASE_URL expected a URL');
  });

  it('merges a JSON config file under the environment', () => {
    const file = writeConfigFile(
      'merge.json',
      JSON.stringify({
        natsUrl: 'nats://from-file:4222',
        maxReviewRounds: 5,
        user: 'carol',
        gates: { plan: { approvers: ['dave'], required: 1 } },
      }),
    );
    const config = loadConfig({ env: { NATS_URL: 'nats://from-env:4222' }, file });
    expect(config.natsUrl).toBe('nats://from-env:4222');
    expect(config.maxReviewRounds).toBe(5);
    expect(config.gates.plan).toEqual({ approvers: ['dave'], required: 1, autoApprove: false });
    expect(config.gates.review.approvers).toEqual(['carol']);
  });

  it('reads the file named by STAGEGATE_CONFIG when no file is passed', () => {
    const file = writeConfigFile('from-env.json', JSON.stringify({ natsUrl: 'nats://named:4222' }));
    expect(loadConfig({ env: { STAGEGATE_CONFIG: file } }).natsUrl).toBe('nats://named:4222');
  });

  it('names the file and the field path of a bad field in the file', () => {
    const file = writeConfigFile('bad-field.json', JSON.stringify({ gates: { deploy: { approvers: ['a'], required: 0 } } }));
    const err = configError({ env: {}, file });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(`${file}: 'gates.deploy.required'`);
  });

  it('names the path of a config file that does not exist', () => {
    const file = join(dir, 'missing.json');
    const err = configError({ env: {}, file });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(`cannot read config file ${file}`);
  });

  it('names the path of a config file that is not valid JSON', () => {
    const file = writeConfigFile('broken.json', '{ "natsUrl": ');
    const err = configError({ env: {}, file });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(`config file ${file} is not valid JSON`);
  });

  it('refuses a config file whose top level is not an object', () => {
    const file = writeConfigFile('array.json', '[]');
    const err = configError({ env: {}, file });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(`config file ${file}: expected a JSON object`);
  });

  it('returns a frozen object', () => {
    const config = loadConfig({ env: {} });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Reflect.set(config, 'natsUrl', 'nats://elsewhere:4222')).toBe(false);
    expect(config.natsUrl).toBe('nats://127.0.0.1:4222');
  });
});
