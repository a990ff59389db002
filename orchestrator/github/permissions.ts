/**
 * What GitHub says about a commenter: their permission on the repository (the collaborator
 * permission API, cached for `permissionCacheMs` so a burst of commands costs one call) and,
 * when a gate's policy names teams, which of those teams they are an active member of. These
 * are the facts the channel verified and attaches to a decision; the orchestrator never asks.
 */
import { z } from 'zod';
import { gitHubStatusOf, type GitHubOctokit } from '../../core/github/client.js';
import { parseAt } from '../../core/parse.js';
import { Permission } from '../../core/policy.js';

export type RepoPermission = Permission | 'none';

const RANK: Record<RepoPermission, number> = { none: 0, read: 1, triage: 2, write: 3, maintain: 4, admin: 5 };

export function hasAtLeast(permission: RepoPermission, level: Permission): boolean {
  return RANK[permission] >= RANK[level];
}

/** `role_name` has the fine levels (triage, maintain, custom roles); `permission` the legacy four. */
const PermissionReply = z.object({
  permission: z.string(),
  role_name: z.string().optional(),
});

const MembershipReply = z.object({ state: z.string() });

export interface PermissionChecker {
  permissionOf(octokit: GitHubOctokit, repo: { owner: string; repo: string }, login: string): Promise<RepoPermission>;
  /** Of `teams` (`org/slug`), those `login` is an active member of. */
  teamsOf(octokit: GitHubOctokit, login: string, teams: readonly string[]): Promise<string[]>;
}

export function createPermissionChecker(options: { cacheMs: number; now?: () => number }): PermissionChecker {
  const now = options.now ?? Date.now;
  const cache = new Map<string, { permission: RepoPermission; until: number }>();
  return {
    async permissionOf(octokit, { owner, repo }, login) {
      const key = `${owner}/${repo}/${login}`.toLowerCase();
      const hit = cache.get(key);
      if (hit !== undefined && hit.until > now()) return hit.permission;
      const permission = await fetchPermission(octokit, owner, repo, login);
      for (const [k, v] of cache) if (v.until <= now()) cache.delete(k);
      if (options.cacheMs > 0) cache.set(key, { permission, until: now() + options.cacheMs });
      return permission;
    },
    async teamsOf(octokit, login, teams) {
      const member: string[] = [];
      for (const team of teams) {
        const [org, slug] = team.split('/');
        if (org === undefined || slug === undefined) continue;
        try {
          const reply = await octokit.rest.teams.getMembershipForUserInOrg({ org, team_slug: slug, username: login });
          if (parseAt(MembershipReply, reply.data, `GitHub team membership of ${login} in ${team}`).state === 'active') member.push(team);
        } catch (err) {
          if (gitHubStatusOf(err) !== 404) throw err;
        }
      }
      return member;
    },
  };
}

async function fetchPermission(octokit: GitHubOctokit, owner: string, repo: string, login: string): Promise<RepoPermission> {
  let data: unknown;
  try {
    data = (await octokit.rest.repos.getCollaboratorPermissionLevel({ owner, repo, username: login })).data;
  } catch (err) {
    // Not a collaborator of a private repository, or no such user.
    if (gitHubStatusOf(err) === 404) return 'none';
    throw err;
  }
  const reply = parseAt(PermissionReply, data, `GitHub permission of ${login} on ${owner}/${repo}`);
  const role = Permission.safeParse(reply.role_name);
  if (role.success) return role.data;
  const legacy = Permission.safeParse(reply.permission);
  return legacy.success ? legacy.data : 'none';
}
