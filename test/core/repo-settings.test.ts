import { describe, expect, it } from 'vitest';
import { GatePolicies } from '../../core/policy.js';
import { checkSettingsText, labelOf, resolveTaskSettings, type SettingsDefaults } from '../../core/repo/settings.js';

const defaults: SettingsDefaults = {
  label: 'stagegate',
  gates: GatePolicies.parse({ plan: { approvers: ['alice'] }, review: { approvers: ['alice'], required: 2 }, deploy: { approvers: ['bob'] } }),
  maxReviewRounds: 2,
  maxReviewerRounds: 3,
};

function layer(text: string): unknown {
  const checked = checkSettingsText(text);
  if (!checked.ok) throw new Error(checked.problems.join('; '));
  return checked.value;
}

describe('repository settings', () => {
  it('merges the layers over the defaults key by key, lists replaced, and leaves out what no file sets', () => {
    const org = layer('gates:\n  review:\n    approvers: [carol, dave]\n    timeout:\n      remindAfterMs: 1000\ncommands:\n  lint: make lint\n');
    const repo = layer('gates:\n  review:\n    approvers: [erin]\n    timeout:\n      expireAfterMs: 5000\n');

    const resolved = resolveTaskSettings(defaults, [org, repo]);

    expect(resolved).toEqual({
      ok: true,
      value: {
        label: 'stagegate',
        policies: {
          ...defaults.gates,
          review: { approvers: ['erin'], required: 2, autoApprove: false, timeout: { remindAfterMs: 1000, expireAfterMs: 5000, onExpire: 'reject' } },
        },
        maxReviewRounds: 2,
        maxReviewerRounds: 3,
        spec: { lintCommand: 'make lint' },
      },
    });
  });

  it('lets limits lower the configured ones and never raise them', () => {
    const lower = resolveTaskSettings(defaults, [layer('limits:\n  maxReviewRounds: 0\n  coder:\n    maxTurns: 5\n')]);
    const higher = resolveTaskSettings(defaults, [layer('limits:\n  maxReviewRounds: 7\n')]);
    expect(lower.ok && lower.value).toMatchObject({ maxReviewRounds: 0, spec: { coderCaps: { maxTurns: 5 } } });
    expect(higher.ok && higher.value.maxReviewRounds).toBe(2);
  });

  it('takes the egress allow-list from the upper layer whole, lower-cased, and none when the list is empty', () => {
    const org = layer('sandbox:\n  egress: [registry.npmjs.org]\n');
    const repo = layer('sandbox:\n  egress: [Files.PyPI.org, "*.pythonhosted.org"]\n');
    const resolved = resolveTaskSettings(defaults, [org, repo]);
    expect(resolved.ok && resolved.value.spec.egress).toEqual(['files.pypi.org', '*.pythonhosted.org']);
    const orgOnly = resolveTaskSettings(defaults, [org]);
    expect(orgOnly.ok && orgOnly.value.spec.egress).toEqual(['registry.npmjs.org']);
    const emptied = resolveTaskSettings(defaults, [org, layer('sandbox:\n  egress: []\n')]);
    expect(emptied.ok && emptied.value.spec).toEqual({});
  });

  it('tunes the CI policy only where serve watches CI: fewer fix attempts, never more, and what to do on a red base', () => {
    const watching = { ...defaults, ci: { maxFixAttempts: 3, onRedBase: 'wait' as const } };
    const tuned = resolveTaskSettings(watching, [layer('ci:\n  maxFixAttempts: 1\n  onRedBase: proceed\nlimits:\n  maxReviewerRounds: 1\n')]);
    expect(tuned.ok && tuned.value).toMatchObject({ ci: { maxFixAttempts: 1, onRedBase: 'proceed' }, maxReviewerRounds: 1 });
    const greedy = resolveTaskSettings(watching, [layer('ci:\n  maxFixAttempts: 10\nlimits:\n  maxReviewerRounds: 9\n')]);
    expect(greedy.ok && greedy.value).toMatchObject({ ci: { maxFixAttempts: 3, onRedBase: 'wait' }, maxReviewerRounds: 3 });
    const notWatching = resolveTaskSettings(defaults, [layer('ci:\n  onRedBase: proceed\n')]);
    expect(notWatching.ok && notWatching.value.ci).toBeUndefined();
  });

  it('takes the update strategy from the organisation unless the repository names its own, and merge from neither', () => {
    const org = layer('update:\n  strategy: rebase\n');
    const inherited = resolveTaskSettings(defaults, [org, layer('label: ship-it\n')]);
    expect(inherited.ok && inherited.value.spec.updateStrategy).toBe('rebase');
    const own = resolveTaskSettings(defaults, [org, layer('update:\n  strategy: merge\n')]);
    expect(own.ok && own.value.spec.updateStrategy).toBe('merge');
    const neither = resolveTaskSettings(defaults, [layer('label: ship-it\n')]);
    expect(neither.ok && neither.value.spec).toEqual({});
  });

  it.each([
    ['ci:\n  onRedBase: ignore\n', '\'ci.onRedBase\' Invalid option: expected one of "wait"|"proceed"'],
    ['update:\n  strategy: squash\n', '\'update.strategy\' Invalid option: expected one of "merge"|"rebase"'],
    ['sandbox:\n  egress: ["https://registry.npmjs.org"]\n', "'sandbox.egress[0]' expected a host name such as 'registry.npmjs.org', '*.pypi.org' or 'mirror.example:8443'"],
    ['label: "stagegate:done"\n', "'label' expected a label that does not start with 'stagegate:' (Stagegate shows a task's state with those)"],
    ['gates:\n  plan:\n    aprovers: [x]\n', '\'gates.plan\' Unrecognized key: "aprovers"'],
    ['gates:\n  plan:\n    autoApprove: [{ name: Docs, when: { pathsMatch: ["*.md"] } }]\n', "'gates.plan.autoApprove[0].name' expected a rule name of lower-case letters, digits and dashes"],
    ['limits:\n  coder:\n    maxTurns: -1\n', "'limits.coder.maxTurns' Too small: expected number to be >0"],
    ['- just\n- a list\n', "'(root)' Invalid input: expected object, received array"],
    ['a: 1\na: 2\n', 'Map keys must be unique at line 2, column 1'],
    ['label: &a go\nother: *b\n', 'Unresolved alias (the anchor must be set before the alias): b'],
  ])('refuses %j, naming the field or line and what was expected', (text, problem) => {
    const checked = checkSettingsText(text);
    expect(checked.ok).toBe(false);
    expect(!checked.ok && checked.problems).toContain(problem);
  });

  it('reads an empty file as no settings', () => {
    expect(checkSettingsText('')).toEqual({ ok: true, value: {} });
    expect(checkSettingsText('# nothing yet\n')).toEqual({ ok: true, value: {} });
  });

  it('checks the merged settings again: a timeout split over two files must still make sense', () => {
    const org = layer('gates:\n  plan:\n    timeout:\n      remindAfterMs: 9000\n');
    const repo = layer('gates:\n  plan:\n    timeout:\n      expireAfterMs: 5000\n');
    expect(resolveTaskSettings(defaults, [org, repo])).toEqual({ ok: false, problems: ["'gates.plan.timeout.remindAfterMs' expected a reminder before the gate expires"] });
  });

  it('finds the label meant even in an invalid file, the upper layer first', () => {
    expect(labelOf(defaults, [{ label: 'org-label' }, { label: 'repo-label', gates: 'nonsense' }])).toBe('repo-label');
    expect(labelOf(defaults, [{ label: 'org-label' }, { label: 'stagegate:bad' }])).toBe('org-label');
    expect(labelOf(defaults, [])).toBe('stagegate');
  });
});
