/**
 * Which task belongs to which issue, branch and pull request, in the KV bucket
 * `sg-github-issues`:
 *
 *   issue.<owner>.<repo>.<number>   → { taskId, createdAt }   the issue's current task
 *   branch.<owner>.<repo>.<branch>  → { taskId }              a Stagegate branch's task
 *   pr.<owner>.<repo>.<number>      → { taskId }              a pull request's task
 *   task-pr.<taskId>                → { number, url }         the task's pull request
 *
 * Owner and repository are lower-cased (GitHub compares them so). An issue's entry is written
 * with the revision it was read at, so two labels at once start one task: the loser sees a
 * conflict and leaves it.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { BranchName } from '../../core/bus/messages.js';
import { GITHUB_ISSUES_BUCKET } from '../../core/bus/subjects.js';
import { parseJsonAt } from '../../core/parse.js';

export interface IssueRef {
  owner: string;
  repo: string;
  number: number;
}

export const IssueTask = z.object({ taskId: z.string().min(1), createdAt: z.string() });
export type IssueTask = z.infer<typeof IssueTask>;

export const LinkedPullRequest = z.object({ number: z.number().int().positive(), url: z.string() });
export type LinkedPullRequest = z.infer<typeof LinkedPullRequest>;

const TaskLink = z.object({ taskId: z.string().min(1) });

export interface StoredIssueTask {
  value: IssueTask;
  revision: number;
}

export interface IssueIndex {
  taskForIssue(issue: IssueRef): Promise<StoredIssueTask | undefined>;
  /** Points the issue at a task if the entry is still at `basedOn` (undefined: absent): the new revision, or undefined when someone else wrote first. */
  claimIssue(issue: IssueRef, value: IssueTask, basedOn: number | undefined): Promise<number | undefined>;
  /** Undoes a claim (its task was never started) if nobody wrote since: the issue's earlier task, or none. */
  unclaimIssue(issue: IssueRef, earlier: IssueTask | undefined, claimed: number): Promise<void>;
  linkBranch(repo: { owner: string; repo: string }, branch: string, taskId: string): Promise<void>;
  /** Undefined for a branch that is not a Stagegate branch (`stagegate/…`), or one no task uses. */
  taskForBranch(repo: { owner: string; repo: string }, branch: string): Promise<string | undefined>;
  /** Records the task's pull request both ways; the status comment shows it from then on. */
  linkPullRequest(pr: IssueRef & { url: string }, taskId: string): Promise<void>;
  taskForPullRequest(pr: IssueRef): Promise<string | undefined>;
  pullRequestOf(taskId: string): Promise<LinkedPullRequest | undefined>;
}

export async function openIssueIndex(nc: NatsConnection): Promise<IssueIndex> {
  const kv: KV = await new Kvm(nc).create(GITHUB_ISSUES_BUCKET, { history: 1 });
  const read = async <S extends z.ZodType>(schema: S, key: string): Promise<{ value: z.infer<S>; revision: number } | undefined> => {
    const entry = await kv.get(key);
    if (entry === null || entry.operation !== 'PUT') return undefined;
    return { value: parseJsonAt(schema, entry.string(), `${GITHUB_ISSUES_BUCKET} entry ${key}`), revision: entry.revision };
  };
  return {
    taskForIssue: (issue) => read(IssueTask, issueKey(issue)),
    async claimIssue(issue, value, basedOn) {
      const data = JSON.stringify(value);
      try {
        return basedOn === undefined ? await kv.create(issueKey(issue), data) : await kv.update(issueKey(issue), data, basedOn);
      } catch (err) {
        if (isWriteConflict(err)) return undefined;
        throw err;
      }
    },
    async unclaimIssue(issue, earlier, claimed) {
      try {
        if (earlier === undefined) await kv.delete(issueKey(issue), { previousSeq: claimed });
        else await kv.update(issueKey(issue), JSON.stringify(earlier), claimed);
      } catch (err) {
        // Someone wrote since: their entry stands.
        if (!isWriteConflict(err)) throw err;
      }
    },
    async linkBranch(repo, branch, taskId) {
      await kv.put(branchKey(repo, branch), JSON.stringify({ taskId }));
    },
    async taskForBranch(repo, branch) {
      if (!BranchName.safeParse(branch).success) return undefined;
      return (await read(TaskLink, branchKey(repo, branch)))?.value.taskId;
    },
    async linkPullRequest(pr, taskId) {
      await kv.put(prKey(pr), JSON.stringify({ taskId }));
      await kv.put(`task-pr.${taskId}`, JSON.stringify({ number: pr.number, url: pr.url }));
    },
    async taskForPullRequest(pr) {
      return (await read(TaskLink, prKey(pr)))?.value.taskId;
    },
    async pullRequestOf(taskId) {
      return (await read(LinkedPullRequest, `task-pr.${taskId}`))?.value;
    },
  };
}

const isWriteConflict = (err: unknown) => err instanceof Error && /wrong last sequence|key exists/i.test(err.message);
const repoPart = (r: { owner: string; repo: string }) => `${r.owner.toLowerCase()}.${r.repo.toLowerCase()}`;
const issueKey = (i: IssueRef) => `issue.${repoPart(i)}.${i.number}`;
const prKey = (i: IssueRef) => `pr.${repoPart(i)}.${i.number}`;
const branchKey = (r: { owner: string; repo: string }, branch: string) => `branch.${repoPart(r)}.${branch}`;
