import { describe, expect, it } from 'vitest';
import { DEFAULT_REQUIRE_APPROVAL, loadConfig } from '../../core/config.js';
import { isStagegateError } from '../../core/errors.js';

describe('coder configuration', () => {
  it('defaults to generous limits, the Responses wire and the default approval list', () => {
    const config = loadConfig({ env: {} });

    expect(config.coder).toEqual({
      maxTurns: 60,
      wallClockMs: 1_800_000,
      contextWindowTokens: 200_000,
      compactAt: 0.8,
      keepRecentTurns: 6,
      requireApproval: DEFAULT_REQUIRE_APPROVAL,
      allowUnsandboxed: false,
      shellTimeoutMs: 120_000,
      outputLimit: 16_000,
    });
    expect(config.model.wireApi).toBe('responses');
    expect(config.model.pricing).toEqual({});
  });

  it('reads limits, approval patterns, the sandbox switch and the wire API from the environment', () => {
    const config = loadConfig({
      env: {
        STAGEGATE_CODER_MAX_TURNS: '12',
        STAGEGATE_CODER_MAX_TOKENS: '500000',
        STAGEGATE_CODER_MAX_COST_USD: '1.5',
        STAGEGATE_CODER_WALL_CLOCK_MS: '60000',
        STAGEGATE_REQUIRE_APPROVAL: 'git push, /\\bcurl\\b/',
        STAGEGATE_ALLOW_UNSANDBOXED: 'true',
        OPENAI_WIRE_API: 'chat',
      },
    });

    expect(config.coder).toMatchObject({ maxTurns: 12, maxTokens: 500_000, maxCostUsd: 1.5, wallClockMs: 60_000, allowUnsandboxed: true });
    expect(config.coder.requireApproval).toEqual(['git push', '/\\bcurl\\b/']);
    expect(config.model.wireApi).toBe('chat');
  });

  it('names the variable whose value is wrong', () => {
    const err = (() => {
      try {
        return loadConfig({ env: { OPENAI_WIRE_API: 'soap', STAGEGATE_ALLOW_UNSANDBOXED: 'maybe', STAGEGATE_CODER_MAX_TURNS: '0' } });
      } catch (e) {
        return e;
      }
    })();

    expect(isStagegateError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain('OPENAI_WIRE_API');
    expect((err as Error).message).toContain('STAGEGATE_ALLOW_UNSANDBOXED expected true or false');
    expect((err as Error).message).toContain('STAGEGATE_CODER_MAX_TURNS expected a number above 0');
  });
});
