/**
 * The parts of GitHub's webhook payloads the GitHub channel reads, one zod schema per event it
 * acts on. A payload is `unknown` until one of these parses it; fields not named are dropped.
 * Owner and repository names are held to GitHub's own character sets, so they can be used in
 * KV keys and URLs as they are.
 */
import type { GitHubClient } from '../../core/github/client.js';
import { z } from 'zod';

export const OwnerLogin = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,38}$/, 'expected a GitHub owner login');
export const RepositoryName = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'expected a GitHub repository name');

export const GitHubUser = z.object({
  login: z.string().min(1),
  /** `User`, `Bot` or `Organization`. */
  type: z.string(),
});
export type GitHubUser = z.infer<typeof GitHubUser>;

export const Repository = z.object({
  name: RepositoryName,
  owner: z.object({ login: OwnerLogin }),
  default_branch: z.string().min(1),
  html_url: z.string().optional(),
});
export type Repository = z.infer<typeof Repository>;

const Installation = z.object({ id: z.number().int().positive() }).nullish();

export const Issue = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().nullable().default(null),
  html_url: z.string().optional(),
  /** Present when the "issue" is a pull request. */
  pull_request: z.object({}).passthrough().nullish(),
});
export type Issue = z.infer<typeof Issue>;

export const IssuesLabeled = z.object({
  action: z.literal('labeled'),
  issue: Issue,
  label: z.object({ name: z.string() }).optional(),
  repository: Repository,
  sender: GitHubUser,
  installation: Installation,
});
export type IssuesLabeled = z.infer<typeof IssuesLabeled>;

export const IssueCommentCreated = z.object({
  action: z.literal('created'),
  issue: Issue,
  comment: z.object({
    id: z.number().int().positive(),
    body: z.string(),
    user: GitHubUser,
    html_url: z.string().optional(),
    created_at: z.string().optional(),
  }),
  repository: Repository,
  sender: GitHubUser,
  installation: Installation,
});
export type IssueCommentCreated = z.infer<typeof IssueCommentCreated>;

/** The repository a pull request's branch is in; null for the head of a fork that was deleted. */
const PullRepository = z.object({ id: z.number().int().positive(), full_name: z.string() }).nullable();

/** A pull request's two ends, as GitHub sends them in payloads and replies. */
export const PullRequestEnds = {
  head: z.object({ ref: z.string(), repo: PullRepository }),
  base: z.object({ repo: PullRepository }),
};

/**
 * A pull request whose branch is in another repository (a fork, or a deleted one): anyone can
 * open one, with any branch name, so it never starts, steers or approves a task.
 */
export function isFromFork(pull: { head: { repo: { id: number } | null }; base: { repo: { id: number } | null } }): boolean {
  return pull.head.repo === null || pull.base.repo === null || pull.head.repo.id !== pull.base.repo.id;
}

/** `pull_request` opened or reopened: a Stagegate branch's pull request is linked to its task. */
export const PullRequestOpened = z.object({
  action: z.enum(['opened', 'reopened']),
  number: z.number().int().positive(),
  pull_request: z.object({
    number: z.number().int().positive(),
    html_url: z.string(),
    ...PullRequestEnds,
  }),
  repository: Repository,
  installation: Installation,
});
export type PullRequestOpened = z.infer<typeof PullRequestOpened>;

/** Owner, repository and installation as the GitHub client wants them. */
export interface RepositoryRef {
  owner: string;
  repo: string;
  installationId?: number;
}

export function repositoryRefOf(payload: { repository: Repository; installation?: { id: number } | null | undefined }): RepositoryRef {
  const ref: RepositoryRef = { owner: payload.repository.owner.login, repo: payload.repository.name };
  if (payload.installation != null) ref.installationId = payload.installation.id;
  return ref;
}

/** The GitHub client as the channel uses it: an authenticated Octokit per repository, and where git clones it from. */
export type RepositoryClients = Pick<GitHubClient, 'forRepository' | 'gitRemoteUrl'>;
