/**
 * Whether a gate passes on its own: `autoApprove: true`, or the first rule whose conditions
 * all hold on the facts the task has. A condition on a fact the task does not have fails, so
 * an unknown change is never auto-approved by a rule about changes.
 */
import picomatch from 'picomatch';
import type { AutoApproveConditions, AutoApproveRule, GateFacts, GatePolicy, RiskLevel } from '../policy.js';

export interface AutoApproval {
  /** Recorded as the decider: `policy:auto-approve` or `policy:<rule>`. */
  by: string;
  rule?: string;
  /** Why the rule holds, kept as the decision's comment. */
  reason?: string;
}

const RISK_ORDER: readonly RiskLevel[] = ['low', 'medium', 'high'];

export function autoApprovalFor(policy: GatePolicy, facts: GateFacts): AutoApproval | undefined {
  if (policy.autoApprove === true) return { by: 'policy:auto-approve' };
  if (policy.autoApprove === false) return undefined;
  for (const rule of policy.autoApprove) {
    const check = checkRule(rule, facts);
    if (check.holds) return { by: `policy:${rule.name}`, rule: rule.name, reason: `rule ${rule.name}: ${check.reasons.join('; ') || 'no conditions'}` };
  }
  return undefined;
}

/** Each condition's verdict, in words; exported for the tests and for explaining a gate. */
export function checkRule(rule: AutoApproveRule, facts: GateFacts): { holds: boolean; reasons: string[] } {
  const results = conditionResults(rule.when, facts);
  const failed = results.filter((r) => !r.ok);
  return { holds: failed.length === 0, reasons: (failed.length === 0 ? results : failed).map((r) => r.reason) };
}

interface ConditionResult {
  ok: boolean;
  reason: string;
}

function conditionResults(when: AutoApproveConditions, facts: GateFacts): ConditionResult[] {
  const results: ConditionResult[] = [];
  if (when.pathsMatch !== undefined) results.push(pathsMatch(when.pathsMatch, facts.changedFiles));
  if (when.maxLinesChanged !== undefined) {
    const lines = facts.linesChanged;
    results.push(
      lines === undefined
        ? { ok: false, reason: 'lines changed unknown' }
        : { ok: lines <= when.maxLinesChanged, reason: `${lines} lines changed (at most ${when.maxLinesChanged})` },
    );
  }
  if (when.checksGreen === true) {
    results.push(
      facts.checksGreen === undefined
        ? { ok: false, reason: 'checks not run' }
        : { ok: facts.checksGreen, reason: facts.checksGreen ? 'checks green' : 'checks failing' },
    );
  }
  if (when.verdict !== undefined) {
    results.push(
      facts.verdict === undefined
        ? { ok: false, reason: 'not reviewed' }
        : { ok: facts.verdict === when.verdict, reason: `reviewer: ${facts.verdict}` },
    );
  }
  if (when.maxRisk !== undefined) {
    // A review without a risk level (an older reviewer) counts as high risk.
    const risk = facts.verdict === undefined ? undefined : (facts.risk ?? 'high');
    results.push(
      risk === undefined
        ? { ok: false, reason: 'risk unknown' }
        : { ok: RISK_ORDER.indexOf(risk) <= RISK_ORDER.indexOf(when.maxRisk), reason: `risk ${risk} (at most ${when.maxRisk})` },
    );
  }
  return results;
}

function pathsMatch(globs: string[], files: string[] | undefined): ConditionResult {
  if (files === undefined) return { ok: false, reason: 'changed paths unknown' };
  const isMatch = picomatch(globs, { dot: true });
  const outside = files.filter((f) => !isMatch(f));
  if (outside.length === 0) return { ok: true, reason: `all ${files.length} changed paths match ${globs.join(', ')}` };
  const shown = outside.slice(0, 3).join(', ');
  return { ok: false, reason: `${outside.length} changed path(s) outside ${globs.join(', ')}: ${shown}${outside.length > 3 ? ', …' : ''}` };
}
