/**
 * Which check deliveries make serve read a task's checks again: finished check runs, check
 * suites and workflow runs, and commit statuses, on a Stagegate branch; nothing else. Routing is
 * pure (GitHub's own example payloads, given our repository and branch); what is read then is
 * shown by the CI-loop tests.
 */
import { describe, expect, it } from 'vitest';
import { routeCheckDelivery, type CiWatchDeps } from '../../orchestrator/github/ci-watch.js';
import { checkRunCompleted, commitStatus, exampleOf, suiteCompleted } from '../helpers/github-webhooks.js';

// Routing reads none of its dependencies: they are used only by the work it returns.
const deps = {} as CiWatchDeps;
const where = { owner: 'acme', repo: 'app' };
const SHA = '0123456789abcdef0123456789abcdef01234567';
const OURS = 'stagegate/7-fix-dates';

describe('check deliveries', () => {
  it.each([
    ['check_run', 'completed', checkRunCompleted({ ...where, branch: OURS, sha: SHA, name: 'test', conclusion: 'failure' })],
    ['check_suite', 'completed', suiteCompleted('check_suite', { ...where, branch: OURS, sha: SHA, conclusion: 'success' })],
    ['workflow_run', 'completed', suiteCompleted('workflow_run', { ...where, branch: OURS, sha: SHA, conclusion: 'failure' })],
    ['status', undefined, commitStatus({ ...where, sha: SHA, branches: ['main', OURS], context: 'ci/jenkins', state: 'failure' })],
  ])('looks again at the branch on %s %s', (event, action, payload) => {
    expect(routeCheckDelivery(deps, event, action, payload)).toMatchObject({ work: `read the checks of ${OURS}` });
  });

  it('ignores unfinished runs, other branches, other events and deliveries without a commit', () => {
    expect(routeCheckDelivery(deps, 'check_run', 'created', checkRunCompleted({ ...where, branch: OURS, sha: SHA, name: 'test', conclusion: 'failure' }))).toEqual({
      ignored: 'check_run.created is not a finished check',
    });
    expect(routeCheckDelivery(deps, 'workflow_run', 'requested', suiteCompleted('workflow_run', { ...where, branch: OURS, sha: SHA, conclusion: 'failure' }))).toEqual({
      ignored: 'workflow_run.requested is not a finished check',
    });
    expect(routeCheckDelivery(deps, 'check_suite', 'completed', suiteCompleted('check_suite', { ...where, branch: 'main', sha: SHA, conclusion: 'failure' }))).toEqual({
      ignored: 'checks of no Stagegate branch',
    });
    expect(routeCheckDelivery(deps, 'status', undefined, commitStatus({ ...where, sha: SHA, branches: [], context: 'ci', state: 'success' }))).toEqual({
      ignored: 'checks of no Stagegate branch',
    });
    expect(routeCheckDelivery(deps, 'status', undefined, { zen: 'no repository' })).toEqual({ ignored: 'a status delivery without a repository and commit' });
    expect(routeCheckDelivery(deps, 'issues', 'opened', exampleOf('issues', 'opened'))).toBeUndefined();
  });
});
