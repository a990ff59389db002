import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type LoadConfigOptions } from '../../core/config.js';
import { isStagegateError } from '../../core/errors.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'stagegate-config-limits-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function configFile(value: unknown): string {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

function errorOf(options: LoadConfigOptions): string {
  try {
    loadConfig(options);
  } catch (err) {
    if (isStagegateError(err, 'CONFIG_INVALID')) return err.message;
    throw err;
  }
  throw new Error('expected loadConfig to throw');
}

const pricing = { 'gpt-5.1-codex': { inputPerMTok: 1.25, cachedInputPerMTok: 0.125, outputPerMTok: 10 } };

describe('limits configuration', () => {
  it('sets no limit by default, with an hour as the trigger window', () => {
    expect(loadConfig({ env: {} }).limits).toEqual({ windowMs: 3_600_000 });
  });

  it('reads every limit from the environment', () => {
    const file = configFile({ model: { pricing } });
    const config = loadConfig({
      file,
      env: {
        STAGEGATE_LIMIT_TRIGGERS_PER_USER: '5',
        STAGEGATE_LIMIT_TRIGGERS_PER_REPO: '20',
        STAGEGATE_LIMIT_WINDOW_MS: '86400000',
        STAGEGATE_LIMIT_CONCURRENT_TASKS_PER_REPO: '3',
        STAGEGATE_LIMIT_DAILY_SPEND_USD_PER_REPO: '12.5',
        STAGEGATE_LIMIT_DAILY_SPEND_USD_PER_ORG: '100',
      },
    });
    expect(config.limits).toEqual({
      triggersPerUser: 5,
      triggersPerRepo: 20,
      windowMs: 86_400_000,
      concurrentTasksPerRepo: 3,
      dailySpendUsdPerRepo: 12.5,
      dailySpendUsdPerOrg: 100,
    });
  });

  it('names the variable whose value is wrong', () => {
    const message = errorOf({ env: { STAGEGATE_LIMIT_TRIGGERS_PER_USER: '2.5', STAGEGATE_LIMIT_WINDOW_MS: '0' } });
    expect(message).toContain('STAGEGATE_LIMIT_TRIGGERS_PER_USER expected a whole number');
    expect(message).toContain('STAGEGATE_LIMIT_WINDOW_MS expected a number above 0');
  });

  it('names the file field of an unknown limit and of a window longer than seven days', () => {
    const file = configFile({ limits: { triggersPerHour: 3, windowMs: 8 * 86_400_000 } });
    const message = errorOf({ file, env: {} });
    expect(message).toContain(`${file}: 'limits' Unrecognized key: "triggersPerHour"`);
    expect(message).toContain(`${file}: 'limits.windowMs' expected at most 604800000 (7 days)`);
  });

  it('refuses a spend cap without model prices, naming the cap', () => {
    expect(errorOf({ env: { STAGEGATE_LIMIT_DAILY_SPEND_USD_PER_ORG: '50' } })).toBe(
      "invalid configuration: STAGEGATE_LIMIT_DAILY_SPEND_USD_PER_ORG needs 'model.pricing' (USD per million tokens of each model used): spend is counted with it",
    );
    const file = configFile({ limits: { dailySpendUsdPerRepo: 5 } });
    expect(errorOf({ file, env: {} })).toContain(`${file}: 'limits.dailySpendUsdPerRepo' needs 'model.pricing'`);
    expect(loadConfig({ file: configFile({ model: { pricing }, limits: { dailySpendUsdPerRepo: 5 } }), env: {} }).limits.dailySpendUsdPerRepo).toBe(5);
  });
});
