/**
 * Who may do what: a collaborator's permission on a repository, and users by login. GitHub's
 * `permission` field keeps the old four values (maintain reads as write, triage as read);
 * `role_name` holds the real role, as on GitHub.
 */
import { simpleUser } from './shapes.js';
import { json, notFound, route, type Route } from './routes.js';
import type { RepoPermission } from './state.js';

const LEGACY: Record<RepoPermission, string> = { admin: 'admin', maintain: 'write', write: 'write', triage: 'read', read: 'read' };

export const collaboratorRoutes: Route[] = [
  route('GET', '/repos/{owner}/{repo}/collaborators/{username}/permission', undefined, (ctx) => {
    const user = ctx.state.users.get((ctx.params.username ?? '').toLowerCase());
    if (user === undefined) throw notFound();
    const role = ctx.state.permissionOf(ctx.repo, user.login) ?? (ctx.repo.private ? undefined : 'read');
    const permissions = role === undefined ? undefined : permissionFlags(role);
    return json({
      permission: role === undefined ? 'none' : LEGACY[role],
      role_name: role ?? 'none',
      user: { ...simpleUser(ctx.urls, user), ...(permissions === undefined ? {} : { permissions }), role_name: role ?? 'none' },
    });
  }),
  route('GET', '/users/{username}', undefined, (ctx) => {
    const user = ctx.state.users.get((ctx.params.username ?? '').toLowerCase());
    if (user === undefined) throw notFound();
    const now = ctx.state.now();
    return json({
      ...simpleUser(ctx.urls, user),
      name: null,
      company: null,
      blog: null,
      location: null,
      email: null,
      hireable: null,
      bio: null,
      public_repos: 0,
      public_gists: 0,
      followers: 0,
      following: 0,
      created_at: now,
      updated_at: now,
    });
  }),
];

function permissionFlags(role: RepoPermission) {
  const rank = ['read', 'triage', 'write', 'maintain', 'admin'].indexOf(role);
  return { pull: rank >= 0, triage: rank >= 1, push: rank >= 2, maintain: rank >= 3, admin: rank >= 4 };
}
