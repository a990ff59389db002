/** How `stagegate status` and `stagegate logs` read a task's security review and an override of it. */
import { describe, expect, it } from 'vitest';
import { formatLogEntry, formatTask } from '../../cli/format.js';
import { TaskEventRecorded } from '../../core/bus/messages.js';
import { applyMessage } from '../../orchestrator/apply-message.js';
import { HELD_TASK, sqlInjection, taskHeldBySecurityFindings } from '../helpers/held-task.js';

describe('stagegate status: the security review', () => {
  it('lists the findings worst first and says the deploy gate is held, by whom it can be passed and why it is not auto-approved', () => {
    const lines = formatTask(taskHeldBySecurityFindings()).split('\n');
    expect(lines).toContain('  security: 2 findings (1 high, 1 medium) — SQL built from input');
    const high = lines.indexOf('            high injection src/db.js:2: The name is concatenated into SQL <b>unescaped</b>.');
    const medium = lines.indexOf('            medium ci-workflow .github/workflows/ci.yml: Changes a CI workflow.');
    expect(high).toBeGreaterThan(0);
    expect(medium).toBeGreaterThan(high);
    expect(lines).toContain('  gate:     deploy (visit 1): 0 of 1 approvals, held by security findings; approvers slack-group:S0SEC, carol');
    expect(lines).toContain('            not auto-approved: high-severity security findings: only slack-group:S0SEC, carol can pass this gate');
  });

  it('marks the override among the decisions, with its reason, and in the log line of the decision', () => {
    const outcome = applyMessage(taskHeldBySecurityFindings(), {
      type: 'gate.decide', taskId: HELD_TASK, msgId: 'm-override', sentAt: '2025-03-01T10:00:09.000Z', gate: 'deploy', decision: 'approve', by: 'carol', via: 'cli', comment: 'accepted risk',
    });
    if (outcome.kind !== 'commit') throw new Error('the override did not commit');
    expect(formatTask(outcome.record)).toContain('    deploy gate: approve (security override) by carol via cli — accepted risk');
    const audit = TaskEventRecorded.parse(outcome.effects.find((e) => e.msgId === 'm-override:audit')?.payload);
    expect(audit.securityOverride).toEqual({ by: 'carol', reason: 'accepted risk', findings: [sqlInjection] });
    expect(formatLogEntry(audit)).toMatch(/deploy gate: approve by carol via cli \(accepted risk\) → overrides 1 finding \(1 high\) → deploying$/);
  });
});
