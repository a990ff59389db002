import type { JobOutcome } from '../../core/bus/job-worker.js';
import type { SecurityReview, Usage, Verdict } from '../../core/bus/messages.js';
import type { ChangeSize } from '../../core/git/numstat.js';

/**
 * The model's verdict, except that failing tests are never approved: a deterministic check
 * outranks a model's opinion. The size of the change the reviewer measured goes with it, for
 * the gate policies' auto-approval rules, and so does the security review: what its findings
 * hold back is the orchestrator's to decide.
 */
export function decideReview(
  verdict: Verdict,
  tests: { passed: boolean; command: string | undefined },
  usage: Usage,
  change?: ChangeSize,
  security?: SecurityReview,
): JobOutcome {
  const final: Verdict =
    tests.passed || verdict.decision === 'request_changes'
      ? verdict
      : {
          ...verdict,
          decision: 'request_changes',
          summary: `The tests fail (\`${tests.command}\`), so the change cannot be approved. Model's view: ${verdict.summary}`,
          comments: [{ file: '(tests)', line: null, body: `\`${tests.command}\` fails on this commit; make it pass.` }, ...verdict.comments],
        };
  const type = final.decision === 'approve' ? 'review.approved' : 'review.changes_requested';
  return {
    type,
    verdict: final,
    testsPassed: tests.passed,
    usage,
    ...(change === undefined ? {} : { changedFiles: change.changedFiles, linesChanged: change.linesChanged }),
    ...(security === undefined ? {} : { security }),
  };
}
