/** How findings read wherever a person sees them: counted by severity, the worst first. */
import { SecuritySeverity, type SecurityFinding } from '../bus/messages.js';

const WORST_FIRST = [...SecuritySeverity.options].reverse();

/** `no findings`, or `3 findings (1 critical, 2 low)`. */
export function summarizeFindings(findings: readonly Pick<SecurityFinding, 'severity'>[]): string {
  if (findings.length === 0) return 'no findings';
  const counts = WORST_FIRST.map((s) => [s, findings.filter((f) => f.severity === s).length] as const).filter(([, n]) => n > 0);
  return `${findings.length} finding${findings.length === 1 ? '' : 's'} (${counts.map(([s, n]) => `${n} ${s}`).join(', ')})`;
}

export function worstFirst<F extends Pick<SecurityFinding, 'severity'>>(findings: readonly F[]): F[] {
  return [...findings].sort((a, b) => WORST_FIRST.indexOf(a.severity) - WORST_FIRST.indexOf(b.severity));
}

/** `high ci-workflow .github/workflows/ci.yml:3`: where and how bad, without the prose. */
export function findingLabel(f: SecurityFinding): string {
  return `${f.severity} ${f.category} ${f.file}${f.line === null ? '' : `:${f.line}`}`;
}
