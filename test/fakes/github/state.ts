/**
 * The fake GitHub's in-memory model: users, repositories (each backed by a real bare git
 * repository on disk), issues and pull requests (one numbering, as on GitHub), comments, labels,
 * reviews, check runs, commit statuses, workflows and runs, deployments, the App, its
 * installations and every token handed out. Route modules read and change it; tests read it
 * through `fake.state` and change it through the fake's helpers.
 */
export type RepoPermission = 'read' | 'triage' | 'write' | 'maintain' | 'admin';
export const PERMISSION_ORDER: readonly RepoPermission[] = ['read', 'triage', 'write', 'maintain', 'admin'];

export interface FakeUser {
  login: string;
  id: number;
  type: 'User' | 'Bot' | 'Organization';
}

export interface FakeLabel {
  id: number;
  name: string;
  color: string;
  description: string | null;
}

export interface FakePull {
  head: string;
  base: string;
  draft: boolean;
  merged: boolean;
  mergedAt: string | null;
  mergedBy: string | null;
  mergeCommitSha: string | null;
  /** The head's last commit while the branch existed (kept after the branch is deleted). */
  lastHeadSha: string;
  /**
   * A fork's pull request: the repository (another fake repository) its head branch is in. The
   * head commit is then `lastHeadSha`, kept in this repository as GitHub keeps `refs/pull/N/head`.
   */
  headRepo?: { owner: string; name: string };
}

export interface FakeIssue {
  id: number;
  number: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  user: string;
  labels: string[];
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
  pull?: FakePull;
}

export interface FakeComment {
  id: number;
  issueNumber: number;
  body: string;
  user: string;
  createdAt: string;
  updatedAt: string;
  reactions: Array<{ user: string; content: string }>;
}

export interface FakeReviewComment {
  id: number;
  reviewId: number;
  pullNumber: number;
  path: string;
  line: number | null;
  startLine: number | null;
  side: 'LEFT' | 'RIGHT';
  body: string;
  user: string;
  commitId: string;
  createdAt: string;
  /** A reply in the thread this comment started (GitHub's `in_reply_to_id`). */
  inReplyTo?: number;
  /** Set on a thread's first comment when the thread is resolved (GraphQL `resolveReviewThread`). */
  resolvedBy?: string;
}

export interface FakeReview {
  id: number;
  pullNumber: number;
  user: string;
  body: string;
  state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'PENDING';
  commitId: string;
  submittedAt: string;
}

export interface FakeCheckRun {
  id: number;
  name: string;
  headSha: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: 'success' | 'failure' | 'neutral' | 'cancelled' | 'skipped' | 'timed_out' | 'action_required' | null;
  startedAt: string | null;
  completedAt: string | null;
  detailsUrl: string | null;
  externalId: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
  /** The App that created it (its slug); test helpers use `ci`, or `github-actions` for a job whose log can be read. */
  app: string;
  annotations: FakeAnnotation[];
  /** A GitHub Actions job's log (the check run's id is the job's). */
  log: string | null;
}

export interface FakeAnnotation {
  path: string;
  startLine: number;
  level: 'notice' | 'warning' | 'failure';
  message: string;
  title: string | null;
}

export interface FakeStatus {
  id: number;
  sha: string;
  context: string;
  state: 'error' | 'failure' | 'pending' | 'success';
  description: string | null;
  targetUrl: string | null;
  creator: string;
  createdAt: string;
}

export interface FakeWorkflow {
  id: number;
  /** `.github/workflows/deploy.yml`; dispatches may name it by file name or id. */
  path: string;
  name: string;
}

export interface FakeRun {
  id: number;
  workflowId: number;
  runNumber: number;
  event: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: string | null;
  headBranch: string | null;
  headSha: string;
  actor: string;
  inputs: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

export interface FakeDeployment {
  id: number;
  sha: string;
  ref: string;
  task: string;
  environment: string;
  description: string | null;
  payload: Record<string, unknown> | string;
  creator: string;
  transient: boolean;
  production: boolean;
  createdAt: string;
}

export interface FakeDeploymentStatus {
  id: number;
  deploymentId: number;
  state: 'error' | 'failure' | 'inactive' | 'pending' | 'success' | 'queued' | 'in_progress';
  description: string;
  environment: string;
  targetUrl: string;
  logUrl: string;
  environmentUrl: string;
  creator: string;
  createdAt: string;
}

export interface FakeRepo {
  id: number;
  owner: string;
  name: string;
  defaultBranch: string;
  /** The bare repository on disk. */
  dir: string;
  private: boolean;
  installationId: number | undefined;
  /** Lower-cased login → permission. */
  collaborators: Map<string, RepoPermission>;
  /** Lower-cased name → label. */
  labels: Map<string, FakeLabel>;
  issues: Map<number, FakeIssue>;
  nextNumber: number;
  comments: FakeComment[];
  reviews: FakeReview[];
  reviewComments: FakeReviewComment[];
  checkRuns: FakeCheckRun[];
  statuses: FakeStatus[];
  workflows: FakeWorkflow[];
  runs: FakeRun[];
  deployments: FakeDeployment[];
  deploymentStatuses: FakeDeploymentStatus[];
  /** Branch protection requires up-to-date branches: a pull request whose head lacks the base's head is `behind`. */
  requireUpToDate?: boolean;
  /** Reads of a pull request left that answer `mergeable: null` (GitHub has not computed it yet). */
  mergeabilityPendingReads?: number;
}

export type TokenPermissions = Record<string, 'read' | 'write'>;

export type FakeToken =
  | { kind: 'user'; token: string; login: string }
  | {
      kind: 'installation';
      token: string;
      login: string;
      installationId: number;
      /** Lower-cased `owner/repo` names the token may touch. */
      repositories: string[];
      permissions: TokenPermissions;
      expiresAt: Date;
    };

export interface FakeApp {
  id: number;
  slug: string;
  /** PEM (SPKI) of the key the App's JWTs must be signed with. */
  publicKey: string;
}

export interface FakeInstallation {
  id: number;
  account: string;
  /** What the App was granted on install; tokens may ask for these or less. */
  permissions: TokenPermissions;
}

/** What a test learns about each `POST /app/installations/{id}/access_tokens`. */
export interface TokenRequest {
  installationId: number;
  repositories: string[] | undefined;
  permissions: TokenPermissions | undefined;
  token: string;
  expiresAt: string;
}

export interface PushUpdate {
  ref: string;
  before: string;
  after: string;
  created: boolean;
  deleted: boolean;
  /** Not a fast-forward of what the ref held before (a force push). */
  forced: boolean;
  /** The ref holds `after` now (false when git refused the update). */
  applied: boolean;
}

export interface PushRecord {
  owner: string;
  repo: string;
  /** Who pushed: the token's login. */
  user: string;
  updates: PushUpdate[];
}

export const ZERO_SHA = '0000000000000000000000000000000000000000';

export class FakeGitHubState {
  readonly users = new Map<string, FakeUser>();
  readonly repos = new Map<string, FakeRepo>();
  readonly tokens = new Map<string, FakeToken>();
  readonly installations = new Map<number, FakeInstallation>();
  readonly tokenRequests: TokenRequest[] = [];
  readonly pushes: PushRecord[] = [];
  app: FakeApp | undefined;
  /** How long installation tokens live (GitHub: one hour). */
  tokenTtlMs = 60 * 60_000;
  private lastId = 1000;

  nextId(): number {
    return ++this.lastId;
  }

  now(): string {
    return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  /** The user with this login, created as a `User` (or as `type`) when new. */
  user(login: string, type: FakeUser['type'] = login.endsWith('[bot]') ? 'Bot' : 'User'): FakeUser {
    const key = login.toLowerCase();
    let user = this.users.get(key);
    if (user === undefined) {
      user = { login, id: this.nextId(), type };
      this.users.set(key, user);
    }
    return user;
  }

  repo(owner: string, name: string): FakeRepo | undefined {
    return this.repos.get(`${owner}/${name}`.toLowerCase());
  }

  issue(repo: FakeRepo, number: number): FakeIssue | undefined {
    return repo.issues.get(number);
  }

  pull(repo: FakeRepo, number: number): (FakeIssue & { pull: FakePull }) | undefined {
    const issue = repo.issues.get(number);
    return issue?.pull === undefined ? undefined : (issue as FakeIssue & { pull: FakePull });
  }

  /** The repository permission of a login: the collaborator's, the owner's admin, or none. */
  permissionOf(repo: FakeRepo, login: string): RepoPermission | undefined {
    if (login.toLowerCase() === repo.owner.toLowerCase()) return 'admin';
    return repo.collaborators.get(login.toLowerCase());
  }

  findCheckRun(id: number): { repo: FakeRepo; run: FakeCheckRun } | undefined {
    for (const repo of this.repos.values()) {
      const run = repo.checkRuns.find((r) => r.id === id);
      if (run !== undefined) return { repo, run };
    }
    return undefined;
  }
}
