/**
 * Response bodies in GitHub's shapes, typed against Octokit's OpenAPI schemas: small objects in
 * full, large ones as a `Pick` of the fields the fake fills (so each field it does send has
 * GitHub's type).
 */
import type { components } from '@octokit/openapi-types';
import type { FakeUrls } from './routes.js';
import type { FakeComment, FakeGitHubState, FakeIssue, FakeLabel, FakeRepo, FakeUser } from './state.js';

export type Schemas = components['schemas'];

export const nodeId = (kind: string, id: number): string => Buffer.from(`${kind}:${id}`).toString('base64url');

export function simpleUser(urls: FakeUrls, user: FakeUser): Schemas['simple-user'] {
  const url = `${urls.api}/users/${user.login}`;
  return {
    login: user.login,
    id: user.id,
    node_id: nodeId('User', user.id),
    avatar_url: `${urls.web}/avatars/${user.login}`,
    gravatar_id: '',
    url,
    html_url: `${urls.web}/${user.login}`,
    followers_url: `${url}/followers`,
    following_url: `${url}/following{/other_user}`,
    gists_url: `${url}/gists{/gist_id}`,
    starred_url: `${url}/starred{/owner}{/repo}`,
    subscriptions_url: `${url}/subscriptions`,
    organizations_url: `${url}/orgs`,
    repos_url: `${url}/repos`,
    events_url: `${url}/events{/privacy}`,
    received_events_url: `${url}/received_events`,
    type: user.type,
    site_admin: false,
  };
}

export const userOf = (state: FakeGitHubState, urls: FakeUrls, login: string): Schemas['simple-user'] => simpleUser(urls, state.user(login));

export const repoUrl = (urls: FakeUrls, repo: FakeRepo): string => `${urls.api}/repos/${repo.owner}/${repo.name}`;
export const repoHtml = (urls: FakeUrls, repo: FakeRepo): string => `${urls.web}/${repo.owner}/${repo.name}`;

export type RepositoryShape = Pick<
  Schemas['repository'],
  'id' | 'node_id' | 'name' | 'full_name' | 'owner' | 'private' | 'html_url' | 'description' | 'fork' | 'url' | 'clone_url' | 'default_branch' | 'visibility'
>;

export function repository(state: FakeGitHubState, urls: FakeUrls, repo: FakeRepo): RepositoryShape {
  return {
    id: repo.id,
    node_id: nodeId('Repository', repo.id),
    name: repo.name,
    full_name: `${repo.owner}/${repo.name}`,
    owner: userOf(state, urls, repo.owner),
    private: repo.private,
    html_url: repoHtml(urls, repo),
    description: null,
    fork: false,
    url: repoUrl(urls, repo),
    clone_url: `${repoHtml(urls, repo)}.git`,
    default_branch: repo.defaultBranch,
    visibility: repo.private ? 'private' : 'public',
  };
}

export function label(urls: FakeUrls, repo: FakeRepo, l: FakeLabel): Schemas['label'] {
  return {
    id: l.id,
    node_id: nodeId('Label', l.id),
    url: `${repoUrl(urls, repo)}/labels/${encodeURIComponent(l.name)}`,
    name: l.name,
    description: l.description,
    color: l.color,
    default: false,
  };
}

export function authorAssociation(state: FakeGitHubState, repo: FakeRepo, login: string): Schemas['author-association'] {
  if (login.toLowerCase() === repo.owner.toLowerCase()) return 'OWNER';
  return state.permissionOf(repo, login) === undefined ? 'NONE' : 'COLLABORATOR';
}

export type IssueShape = Pick<
  Schemas['issue'],
  | 'id'
  | 'node_id'
  | 'url'
  | 'repository_url'
  | 'labels_url'
  | 'comments_url'
  | 'events_url'
  | 'html_url'
  | 'number'
  | 'state'
  | 'title'
  | 'body'
  | 'user'
  | 'labels'
  | 'assignee'
  | 'milestone'
  | 'locked'
  | 'comments'
  | 'pull_request'
  | 'closed_at'
  | 'created_at'
  | 'updated_at'
  | 'author_association'
>;

export function issue(state: FakeGitHubState, urls: FakeUrls, repo: FakeRepo, i: FakeIssue): IssueShape {
  const url = `${repoUrl(urls, repo)}/issues/${i.number}`;
  const htmlUrl = `${repoHtml(urls, repo)}/${i.pull === undefined ? 'issues' : 'pull'}/${i.number}`;
  return {
    id: i.id,
    node_id: nodeId('Issue', i.id),
    url,
    repository_url: repoUrl(urls, repo),
    labels_url: `${url}/labels{/name}`,
    comments_url: `${url}/comments`,
    events_url: `${url}/events`,
    html_url: htmlUrl,
    number: i.number,
    state: i.state,
    title: i.title,
    body: i.body,
    user: userOf(state, urls, i.user),
    labels: i.labels.flatMap((name) => {
      const l = repo.labels.get(name.toLowerCase());
      return l === undefined ? [] : [label(urls, repo, l)];
    }),
    assignee: null,
    milestone: null,
    locked: false,
    comments: repo.comments.filter((c) => c.issueNumber === i.number).length,
    ...(i.pull === undefined
      ? {}
      : {
          pull_request: {
            url: `${repoUrl(urls, repo)}/pulls/${i.number}`,
            html_url: htmlUrl,
            diff_url: `${htmlUrl}.diff`,
            patch_url: `${htmlUrl}.patch`,
            merged_at: i.pull.mergedAt,
          },
        }),
    closed_at: i.closedAt,
    created_at: i.createdAt,
    updated_at: i.updatedAt,
    author_association: authorAssociation(state, repo, i.user),
  };
}

export function issueComment(state: FakeGitHubState, urls: FakeUrls, repo: FakeRepo, c: FakeComment): Schemas['issue-comment'] {
  const kind = repo.issues.get(c.issueNumber)?.pull === undefined ? 'issues' : 'pull';
  return {
    id: c.id,
    node_id: nodeId('IssueComment', c.id),
    url: `${repoUrl(urls, repo)}/issues/comments/${c.id}`,
    body: c.body,
    html_url: `${repoHtml(urls, repo)}/${kind}/${c.issueNumber}#issuecomment-${c.id}`,
    user: userOf(state, urls, c.user),
    created_at: c.createdAt,
    updated_at: c.updatedAt,
    issue_url: `${repoUrl(urls, repo)}/issues/${c.issueNumber}`,
    author_association: authorAssociation(state, repo, c.user),
  };
}
