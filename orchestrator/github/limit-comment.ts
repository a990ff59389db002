/**
 * The comment that answers a GitHub trigger a limit refused (a label, a `/retry`): which limit,
 * its value, the count or spend now and when it resets, in the words every channel uses. One
 * comment per issue, limit, person or repository counted, and reset: the label added again or
 * `/retry` repeated before then is logged, not answered, so refusals cannot make Stagegate spam
 * an issue. The claim is kept in the usage bucket (outliving any window) before posting; a post
 * that fails gives it back, so the next trigger tells it.
 */
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { GitHubOctokit } from '../../core/github/client.js';
import { keyToken } from '../limits/account.js';
import type { LimitRefusal } from '../limits/limit-reached.js';
import type { IssueRef } from './issue-index.js';

export interface LimitComments {
  /** Posts `body` on the issue unless this refusal was told there already; true when posted. */
  tell(octokit: GitHubOctokit, issue: IssueRef, refusal: LimitRefusal, body: string): Promise<boolean>;
}

export function limitComments(usage: KV): LimitComments {
  return {
    async tell(octokit, issue, refusal, body) {
      const key = noticeKey(issue, refusal);
      try {
        await usage.create(key, JSON.stringify(refusal));
      } catch (err) {
        if (err instanceof Error && /wrong last sequence|key exists/i.test(err.message)) return false;
        throw err;
      }
      try {
        await octokit.rest.issues.createComment({ owner: issue.owner, repo: issue.repo, issue_number: issue.number, body });
      } catch (err) {
        await usage.delete(key);
        throw err;
      }
      return true;
    },
  };
}

/** `@login Stagegate did not start <what>: <the limit>. Nothing was started.` */
export function limitCommentText(login: string, what: string, refusalMessage: string): string {
  return `@${login} Stagegate did not start ${what}: ${refusalMessage}. Nothing was started.`;
}

/** The running-task limit frees up when its tasks change, so those stand in for its reset. */
function noticeKey(issue: IssueRef, refusal: LimitRefusal): string {
  const reset =
    refusal.limit === 'concurrentTasksPerRepo'
      ? createHash('sha256').update([...refusal.running].sort().join(',')).digest('hex').slice(0, 16)
      : String(Date.parse(refusal.resetsAt));
  return ['refused', keyToken(issue.owner.toLowerCase()), keyToken(issue.repo.toLowerCase()), issue.number, refusal.limit, keyToken(refusal.subject), reset].join('.');
}
