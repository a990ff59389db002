/**
 * The gate policy's pure parts, by tables: principal syntax and matching, identities, quorum
 * and separation of duties, each auto-approval condition, and the schema's checks.
 */
import { describe, expect, it } from 'vitest';
import {
  GatePolicies,
  GatePolicy,
  autoApprovalFor,
  effectivePolicy,
  identityOf,
  matchesPrincipal,
  parsePrincipal,
  submitterIdentity,
  tallyApprovals,
  type Decider,
  type GateFacts,
} from '../../core/policy.js';
import { checkRule } from '../../core/policy/auto-approve.js';

const cli = (by: string): Decider => ({ by, via: 'cli' });
const api = (by: string): Decider => ({ by, via: 'api' });
const gh = (by: string, principal: Decider['principal'] = {}): Decider => ({ by, via: 'github', principal });
const slack = (by: string, principal: Decider['principal'] = {}): Decider => ({ by, via: 'slack', principal });
const policyDecider: Decider = { by: 'policy:auto-approve', via: 'policy' };

describe('principals', () => {
  it.each([
    ['*', { kind: 'anyone' }],
    ['alice', { kind: 'user', namespace: 'local', channels: ['cli', 'api'], name: 'alice' }],
    ['cli:alice', { kind: 'user', namespace: 'local', channels: ['cli'], name: 'alice' }],
    ['api:deploy-bot', { kind: 'user', namespace: 'local', channels: ['api'], name: 'deploy-bot' }],
    ['github:octocat', { kind: 'user', namespace: 'github', channels: ['github'], name: 'octocat' }],
    ['slack:U123', { kind: 'user', namespace: 'slack', channels: ['slack'], name: 'U123' }],
    ['github-team:acme/release', { kind: 'github-team', team: 'acme/release' }],
    ['github-permission:maintain', { kind: 'github-permission', permission: 'maintain' }],
    ['slack-group:S456', { kind: 'slack-group', group: 'S456' }],
  ])('parses %s', (text, parsed) => {
    expect(parsePrincipal(text)).toEqual(parsed);
  });

  it.each([
    ['teams:x', "unknown principal prefix 'teams:'"],
    ['github-team:acme', 'expected github-team:<org>/<team>'],
    ['github-permission:owner', 'expected a permission from read, triage, write, maintain, admin'],
    ['github:', "expected a name after 'github:'"],
  ])('refuses %s, saying why', (text, message) => {
    const parsed = parsePrincipal(text);
    expect('error' in parsed && parsed.error).toContain(message);
  });

  it.each<[string, Decider, boolean]>([
    ['*', cli('anyone'), true],
    ['*', gh('octocat'), true],
    ['*', policyDecider, false],
    ['alice', cli('alice'), true],
    ['alice', api('alice'), true],
    ['alice', slack('alice'), false],
    ['alice', gh('alice'), false],
    ['alice', cli('alicia'), false],
    ['cli:alice', cli('alice'), true],
    ['cli:alice', api('alice'), false],
    ['api:deploy-bot', api('deploy-bot'), true],
    ['api:deploy-bot', cli('deploy-bot'), false],
    ['github:octocat', gh('octocat'), true],
    ['github:octocat', gh('OctoCat'), true],
    ['github:octocat', gh('github:octocat'), true],
    ['github:octocat', cli('octocat'), false],
    ['github-team:acme/release', gh('dev', { teams: ['acme/release'] }), true],
    ['github-team:acme/release', gh('dev', { teams: ['ACME/Release'] }), true],
    ['github-team:acme/release', gh('dev', { teams: ['acme/web'] }), false],
    ['github-team:acme/release', gh('dev'), false],
    ['github-team:acme/release', slack('U1', { teams: ['acme/release'] }), false],
    ['github-permission:write', gh('dev', { permission: 'write' }), true],
    ['github-permission:write', gh('dev', { permission: 'admin' }), true],
    ['github-permission:write', gh('dev', { permission: 'triage' }), false],
    ['github-permission:write', gh('dev'), false],
    ['github-permission:write', api('dev', ), false],
    ['slack:U123', slack('U123'), true],
    ['slack:U123', slack('slack:U123'), true],
    ['slack:U123', slack('U999'), false],
    ['slack-group:S456', slack('U1', { groups: ['S456'] }), true],
    ['slack-group:S456', slack('U1', { groups: ['S999'] }), false],
    ['slack-group:S456', gh('U1', { groups: ['S456'] }), false],
    ['teams:x', cli('x'), false],
  ])('%s matches %j: %s', (principal, decider, expected) => {
    expect(matchesPrincipal(principal, decider)).toBe(expected);
  });

  it.each<[Decider, string]>([
    [cli('alice'), 'local:alice'],
    [api('alice'), 'local:alice'],
    [api('cli:alice'), 'local:alice'],
    [gh('OctoCat'), 'github:octocat'],
    [slack('slack:U1'), 'slack:U1'],
    [policyDecider, 'policy:policy:auto-approve'],
  ])('the identity of %j is %s', (decider, identity) => {
    expect(identityOf(decider)).toBe(identity);
  });

  it.each([
    ['alice', 'local:alice'],
    ['cli:alice', 'local:alice'],
    ['github:OctoCat', 'github:octocat'],
    ['slack:U1', 'slack:U1'],
    ['weird:name', 'local:weird:name'],
  ])('the submitter %s is %s', (submittedBy, identity) => {
    expect(submitterIdentity(submittedBy)).toBe(identity);
  });
});

const policy = (over: Partial<GatePolicy> = {}): GatePolicy => ({ approvers: ['*'], required: 1, autoApprove: false, ...over });

describe('quorum and separation of duties', () => {
  it.each<[string, GatePolicy, Decider[], string, { approvals: number; satisfied: boolean }]>([
    ['no approvals', policy(), [], 'sam', { approvals: 0, satisfied: false }],
    ['one of one', policy(), [cli('bob')], 'sam', { approvals: 1, satisfied: true }],
    ['one of two', policy({ required: 2 }), [cli('bob')], 'sam', { approvals: 1, satisfied: false }],
    ['two people of two', policy({ required: 2 }), [cli('bob'), cli('carol')], 'sam', { approvals: 2, satisfied: true }],
    ['the same person through CLI and API counts once', policy({ required: 2 }), [cli('bob'), api('bob')], 'sam', { approvals: 1, satisfied: false }],
    [
      'mixed principals: a GitHub team member and a Slack group member',
      policy({ approvers: ['github-team:acme/release', 'slack-group:S1'], required: 2 }),
      [gh('dev', { teams: ['acme/release'] }), slack('U7', { groups: ['S1'] })],
      'sam',
      { approvals: 2, satisfied: true },
    ],
    [
      'approvals by people the policy does not name are not tallied (after an escalation)',
      policy({ approvers: ['carol'], required: 1 }),
      [cli('bob')],
      'sam',
      { approvals: 0, satisfied: false },
    ],
    ['the submitter alone, without separation of duties', policy(), [cli('sam')], 'sam', { approvals: 1, satisfied: true }],
    ['the submitter alone, with separation of duties', policy({ separationOfDuties: true }), [cli('sam')], 'sam', { approvals: 1, satisfied: false }],
    ['the submitter and another, with separation of duties', policy({ separationOfDuties: true }), [cli('sam'), cli('bob')], 'sam', { approvals: 2, satisfied: true }],
    ['another alone, with separation of duties', policy({ separationOfDuties: true }), [cli('bob')], 'sam', { approvals: 1, satisfied: true }],
    [
      'the submitter through another channel of the same namespace',
      policy({ separationOfDuties: true }),
      [api('sam')],
      'cli:sam',
      { approvals: 1, satisfied: false },
    ],
    [
      'a GitHub submitter approving on GitHub',
      policy({ approvers: ['github-permission:write'], separationOfDuties: true }),
      [gh('Sam', { permission: 'admin' })],
      'github:sam',
      { approvals: 1, satisfied: false },
    ],
  ])('%s', (_name, p, approvals, submitter, expected) => {
    expect(tallyApprovals(p, approvals, submitter)).toMatchObject({ ...expected, required: p.required });
  });

  it('says what is missing', () => {
    expect(tallyApprovals(policy({ required: 3 }), [cli('bob')], 'sam').missing).toBe('1 of 3 approvals; 2 more needed');
    expect(tallyApprovals(policy({ separationOfDuties: true }), [cli('sam')], 'sam').missing).toBe(
      'sam submitted the task and cannot be its only approver (separation of duties): an approval by someone else is needed',
    );
    expect(tallyApprovals(policy(), [cli('bob')], 'sam').missing).toBeUndefined();
  });
});

describe('auto-approval', () => {
  const reviewed: GateFacts = {
    commit: 'c1',
    changedFiles: ['docs/guide.md', 'docs/.vitepress/config.md'],
    linesChanged: 40,
    checksGreen: true,
    verdict: 'approve',
    risk: 'low',
  };
  const rule = (when: NonNullable<Exclude<GatePolicy['autoApprove'], boolean>>[number]['when']) =>
    policy({ autoApprove: [{ name: 'r', when }] });

  it('passes every gate when autoApprove is true, as policy:auto-approve', () => {
    expect(autoApprovalFor(policy({ autoApprove: true }), { commit: null })).toEqual({ by: 'policy:auto-approve' });
  });

  it('never passes when autoApprove is false', () => {
    expect(autoApprovalFor(policy(), reviewed)).toBeUndefined();
  });

  it.each<[string, Parameters<typeof rule>[0], GateFacts, boolean]>([
    ['paths: all match', { pathsMatch: ['docs/**'] }, reviewed, true],
    ['paths: one outside', { pathsMatch: ['docs/**'] }, { ...reviewed, changedFiles: ['docs/a.md', 'src/a.ts'] }, false],
    ['paths: any of several globs', { pathsMatch: ['docs/**', '*.md'] }, { ...reviewed, changedFiles: ['docs/a.md', 'README.md'] }, true],
    ['paths: unknown', { pathsMatch: ['docs/**'] }, { commit: 'c1' }, false],
    ['paths: dotfiles are matched by **', { pathsMatch: ['**/*.yml'] }, { ...reviewed, changedFiles: ['.github/workflows/ci.yml'] }, true],
    ['lines: at the limit', { maxLinesChanged: 40 }, reviewed, true],
    ['lines: over the limit', { maxLinesChanged: 39 }, reviewed, false],
    ['lines: unknown', { maxLinesChanged: 1000 }, { commit: 'c1', changedFiles: [] }, false],
    ['checks: green', { checksGreen: true }, reviewed, true],
    ['checks: failing', { checksGreen: true }, { ...reviewed, checksGreen: false }, false],
    ['checks: not run', { checksGreen: true }, { commit: 'c1' }, false],
    ['verdict: approve', { verdict: 'approve' }, reviewed, true],
    ['verdict: changes requested', { verdict: 'approve' }, { ...reviewed, verdict: 'request_changes' }, false],
    ['verdict: not reviewed', { verdict: 'approve' }, { commit: 'c1' }, false],
    ['risk: low within medium', { maxRisk: 'medium' }, reviewed, true],
    ['risk: medium within medium', { maxRisk: 'medium' }, { ...reviewed, risk: 'medium' }, true],
    ['risk: high over medium', { maxRisk: 'medium' }, { ...reviewed, risk: 'high' }, false],
    ['risk: a review without a risk level counts as high', { maxRisk: 'medium' }, { ...reviewed, risk: undefined }, false],
    ['risk: not reviewed', { maxRisk: 'high' }, { commit: 'c1' }, false],
    ['every condition together', { pathsMatch: ['docs/**'], maxLinesChanged: 50, checksGreen: true, verdict: 'approve', maxRisk: 'low' }, reviewed, true],
    ['every condition but one', { pathsMatch: ['docs/**'], maxLinesChanged: 50, checksGreen: true, verdict: 'approve', maxRisk: 'low' }, { ...reviewed, risk: 'medium' }, false],
  ])('%s', (_name, when, facts, passes) => {
    expect(autoApprovalFor(rule(when), facts) !== undefined).toBe(passes);
  });

  it('records the first rule that holds, by name, with why it held', () => {
    const p = policy({
      autoApprove: [
        { name: 'tiny', when: { maxLinesChanged: 5 } },
        { name: 'docs-only', when: { pathsMatch: ['docs/**'], checksGreen: true } },
        { name: 'reviewed-low-risk', when: { verdict: 'approve', maxRisk: 'low' } },
      ],
    });
    expect(autoApprovalFor(p, reviewed)).toEqual({
      by: 'policy:docs-only',
      rule: 'docs-only',
      reason: 'rule docs-only: all 2 changed paths match docs/**; checks green',
    });
  });

  it('explains a rule that does not hold by the conditions that failed', () => {
    const check = checkRule({ name: 'small', when: { maxLinesChanged: 10, checksGreen: true, pathsMatch: ['docs/**'] } }, {
      ...reviewed,
      changedFiles: ['src/a.ts', 'src/b.ts', 'src/c.ts', 'src/d.ts'],
    });
    expect(check).toEqual({
      holds: false,
      reasons: ['4 changed path(s) outside docs/**: src/a.ts, src/b.ts, src/c.ts, …', '40 lines changed (at most 10)'],
    });
  });
});

describe('policy schema', () => {
  const parse = (value: unknown) => GatePolicy.safeParse(value);
  const messages = (value: unknown) => {
    const result = parse(value);
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('keeps a policy written before principals, rules and timeouts as it was', () => {
    expect(GatePolicy.parse({ approvers: ['alice'] })).toEqual({ approvers: ['alice'], required: 1, autoApprove: false });
  });

  it('reads rules, separation of duties and a timeout', () => {
    const parsed = GatePolicy.parse({
      approvers: ['github-team:acme/release', 'slack-group:S1'],
      required: 2,
      separationOfDuties: true,
      autoApprove: [{ name: 'docs-only', when: { pathsMatch: ['docs/**'], checksGreen: true } }],
      timeout: { remindAfterMs: 60_000, expireAfterMs: 120_000, onExpire: 'escalate', escalateTo: { approvers: ['github:cto'] } },
    });
    expect(parsed.timeout).toEqual({
      remindAfterMs: 60_000,
      expireAfterMs: 120_000,
      onExpire: 'escalate',
      escalateTo: { approvers: ['github:cto'], required: 1 },
    });
  });

  it.each<[string, unknown, string]>([
    ['an unknown principal prefix', { approvers: ['teams:x'] }, "approvers.0: expected a principal such as alice"],
    ['a rule with an unknown condition', { approvers: ['a'], autoApprove: [{ name: 'r', when: { smallish: true } }] }, 'autoApprove'],
    ['two rules of one name', { approvers: ['a'], autoApprove: [{ name: 'r', when: {} }, { name: 'r', when: {} }] }, 'autoApprove: expected distinct rule names'],
    ['a rule name with spaces', { approvers: ['a'], autoApprove: [{ name: 'docs only', when: {} }] }, 'autoApprove'],
    ['a timeout with no duration', { approvers: ['a'], timeout: { onExpire: 'reject' } }, 'timeout: expected remindAfterMs, expireAfterMs or both'],
    ['a reminder after the expiry', { approvers: ['a'], timeout: { remindAfterMs: 10, expireAfterMs: 5 } }, 'timeout.remindAfterMs: expected a reminder before the gate expires'],
    ['an escalation to nobody', { approvers: ['a'], timeout: { expireAfterMs: 5, onExpire: 'escalate' } }, "timeout.escalateTo: expected the approvers to escalate to (onExpire is 'escalate')"],
  ])('refuses %s', (_name, value, message) => {
    expect(messages(value).join(' | ')).toContain(message);
  });

  it('lets the command gate default to the deploy policy, and escalation replace the approvers', () => {
    const policies = GatePolicies.parse({
      plan: { approvers: ['a'] },
      review: { approvers: ['a'] },
      deploy: { approvers: ['a', 'b'], required: 2, timeout: { expireAfterMs: 5, onExpire: 'escalate', escalateTo: { approvers: ['c'] } } },
    });
    expect(effectivePolicy(policies, 'command', false).approvers).toEqual(['a', 'b']);
    expect(effectivePolicy(policies, 'deploy', true)).toMatchObject({ approvers: ['c'], required: 1 });
    expect(effectivePolicy(policies, 'plan', true).approvers).toEqual(['a']);
  });
});
