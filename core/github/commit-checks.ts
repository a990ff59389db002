/**
 * The checks on a commit as one verdict: its check runs (the latest of each name) and its commit
 * statuses (the latest of each context). Red when any of them failed, naming each with its link;
 * green when every one has finished well and every required name is among them; else pending,
 * naming what it waits for. A commit with no checks and none required is green: a repository
 * without CI has nothing to wait for (name the checks in `requiredChecks` to insist on them).
 */
import { z } from 'zod';
import { parseAt } from '../parse.js';
import type { GitHubOctokit } from './client.js';

const CheckRuns = z.object({
  check_runs: z.array(
    z.object({
      id: z.number().int(),
      name: z.string(),
      status: z.string(),
      conclusion: z.string().nullable(),
      html_url: z.string().nullable().optional(),
      details_url: z.string().nullable().optional(),
      app: z.object({ slug: z.string().nullish() }).nullish(),
      output: z.object({ title: z.string().nullish(), summary: z.string().nullish(), text: z.string().nullish() }).nullish(),
    }),
  ),
});

const CombinedStatus = z.object({
  statuses: z.array(z.object({ context: z.string(), state: z.string(), target_url: z.string().nullable().optional(), description: z.string().nullish() })),
});

export interface CheckState {
  name: string;
  /** `success`, `failure`, `pending`… as GitHub words it. */
  state: string;
  url: string | undefined;
  /** Where it came from: a check run (with its id, App and output) or a commit status (with its description). */
  source: { kind: 'check-run'; id: number; app: string | undefined; output: string } | { kind: 'status'; description: string };
}

export type ChecksVerdict =
  | { kind: 'green'; checks: CheckState[] }
  | { kind: 'red'; failed: CheckState[] }
  | { kind: 'pending'; waiting: string[] };

/** Conclusions that let a change through: GitHub counts neutral and skipped as passing. */
const PASSING = new Set(['success', 'neutral', 'skipped']);

export async function readCommitChecks(octokit: GitHubOctokit, repo: { owner: string; repo: string }, sha: string): Promise<CheckState[]> {
  const where = `${repo.owner}/${repo.repo}@${sha.slice(0, 10)}`;
  const runs = parseAt(CheckRuns, (await octokit.rest.checks.listForRef({ ...repo, ref: sha, per_page: 100 })).data, `GitHub check runs of ${where}`);
  const combined = parseAt(CombinedStatus, (await octokit.rest.repos.getCombinedStatusForRef({ ...repo, ref: sha, per_page: 100 })).data, `GitHub commit status of ${where}`);
  return [
    ...runs.check_runs.map((r): CheckState => ({
      name: r.name,
      state: r.status === 'completed' ? (r.conclusion ?? 'completed') : r.status,
      url: r.html_url ?? r.details_url ?? undefined,
      source: {
        kind: 'check-run',
        id: r.id,
        app: r.app?.slug ?? undefined,
        output: [r.output?.title, r.output?.summary, r.output?.text].filter((part): part is string => typeof part === 'string' && part.trim() !== '').join('\n'),
      },
    })),
    ...combined.statuses.map((s): CheckState => ({ name: s.context, state: s.state, url: s.target_url ?? undefined, source: { kind: 'status', description: s.description ?? '' } })),
  ];
}

/** Pure: the checks found and the names required → one verdict. */
export function judgeChecks(checks: CheckState[], required: readonly string[]): ChecksVerdict {
  const failed = checks.filter((c) => isFinished(c.state) && !PASSING.has(c.state));
  if (failed.length > 0) return { kind: 'red', failed };
  const waiting = [
    ...checks.filter((c) => !isFinished(c.state)).map((c) => `${c.name} (${c.state})`),
    ...required.filter((name) => !checks.some((c) => c.name === name)).map((name) => `${name} (not reported yet)`),
  ];
  return waiting.length > 0 ? { kind: 'pending', waiting } : { kind: 'green', checks };
}

/** Still running: check-run statuses before `completed`, and commit statuses that are `pending`. */
function isFinished(state: string): boolean {
  return !['queued', 'in_progress', 'waiting', 'requested', 'pending', 'expected'].includes(state);
}

export function describeCheck(c: CheckState): string {
  return `${c.name} ${c.state}${c.url === undefined ? '' : ` (${c.url})`}`;
}
