/**
 * The coder's secret checks. At finish, what the work adds so far is scanned, and a finding goes
 * back to the model as a failed finish (it may take the value out). Before every push, each
 * commit the push would send is scanned; a finding stops the push (SECRET_FOUND), so nothing
 * with a secret in it leaves the worktree, and the job fails naming file, line and rule.
 */
import { StagegateError } from '../../core/errors.js';
import type { Workspace } from '../../core/git/workspace.js';
import { describeFindings, scanCommits, scanDiff, type SecretFinding } from '../../core/security/secret-scan.js';

/** What the index adds over `start` (the remote commit the job began from); call after `git add --all`. */
export async function secretsInWork(ws: Workspace, start: string): Promise<SecretFinding[]> {
  const tree = (await ws.git(['write-tree'])).trim();
  return scanDiff(ws.dir, start, tree);
}

/** The finish verdict's text when the work adds a secret. */
export function secretFeedback(findings: readonly SecretFinding[]): string {
  return (
    `The change adds what looks like a secret (a key, token or password) at ${describeFindings(findings)}. ` +
    'Secrets must never be committed: take the value out and read it from the environment or the configuration instead, then call finish again.'
  );
}

/** Throws SECRET_FOUND when a commit that is on no remote branch yet adds a secret. */
export async function assertPushIsClean(ws: Workspace, taskId: string): Promise<void> {
  const commits = (await ws.git(['rev-list', '--reverse', 'HEAD', '--not', '--remotes=origin'])).split('\n').filter((c) => c !== '');
  const findings = await scanCommits(ws.dir, commits);
  if (findings.length === 0) return;
  throw new StagegateError('SECRET_FOUND', `secret found: ${describeFindings(findings)}`, { taskId, details: { findings } });
}
