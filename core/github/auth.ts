/**
 * GitHub App credentials and installation tokens. An installation token is minted for one
 * repository with the least permissions Stagegate needs (`INSTALLATION_PERMISSIONS`), kept until
 * shortly before GitHub says it expires, and minted again after that or after a 401. Concurrent
 * callers for the same repository share one mint.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { StagegateError, errorMessage } from '../errors.js';
import { parseAt } from '../parse.js';

export type PermissionLevel = 'read' | 'write';

/** Repository permissions an installation token may be scoped to (a subset of GitHub's names). */
export interface InstallationPermissions {
  actions?: PermissionLevel;
  checks?: PermissionLevel;
  contents?: PermissionLevel;
  deployments?: PermissionLevel;
  issues?: PermissionLevel;
  metadata?: 'read';
  pull_requests?: PermissionLevel;
  statuses?: PermissionLevel;
}

/**
 * What Stagegate asks for on a repository, and nothing more: push branches and merge (contents),
 * comment and label (issues, pull_requests), read checks and commit statuses, dispatch workflows
 * (actions) and record deployments. GitHub adds metadata: read by itself.
 */
export const INSTALLATION_PERMISSIONS: Readonly<InstallationPermissions> = Object.freeze({
  contents: 'write',
  issues: 'write',
  pull_requests: 'write',
  checks: 'read',
  actions: 'write',
  deployments: 'write',
  statuses: 'read',
});

/** A token good for one repository; `expiresAt` null for a configured token, which does not expire. */
export interface RepositoryToken {
  token: string;
  expiresAt: Date | null;
}

/** Mint again this long before GitHub's expiry, so no request goes out with a token about to lapse. */
export const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;

/**
 * GITHUB_APP_PRIVATE_KEY is PEM text (possibly on one line with `\n` escapes, as .env files hold
 * it) or a path to a PEM file. Either way the key is checked and returned as PKCS#8 PEM, the form
 * the JWT signer accepts whatever GitHub's download used (PKCS#1).
 */
export function readPrivateKey(value: string): string {
  const trimmed = value.trim();
  let pem: string;
  if (trimmed.startsWith('-----BEGIN')) {
    pem = trimmed.replace(/\\n/g, '\n');
  } else {
    const named = trimmed.length <= 1024 && !/\s/.test(trimmed) ? ` ${trimmed}` : '';
    try {
      pem = readFileSync(trimmed, 'utf8');
    } catch (err) {
      throw new StagegateError(
        'CONFIG_INVALID',
        `invalid configuration: GITHUB_APP_PRIVATE_KEY is neither PEM text (-----BEGIN …) nor a readable file${named}: ${errorMessage(err)}`,
        { cause: err },
      );
    }
  }
  try {
    return createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch (err) {
    throw new StagegateError('CONFIG_INVALID', `invalid configuration: GITHUB_APP_PRIVATE_KEY is not a valid private key: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

const InstallationTokenReply = z.object({ token: z.string().min(1), expires_at: z.iso.datetime({ offset: true }) });

/** Mints a token: `POST /app/installations/{id}/access_tokens` with the App's JWT. */
export type MintInstallationToken = (request: {
  installationId: number;
  repository: string;
  permissions: InstallationPermissions;
}) => Promise<unknown>;

export interface InstallationTokenCache {
  /** A valid token for the repository; `refresh` mints a new one whatever the cache holds. */
  get(key: { installationId: number; owner: string; repo: string; permissions: InstallationPermissions }, refresh?: boolean): Promise<RepositoryToken>;
}

export function createInstallationTokenCache(mint: MintInstallationToken, now: () => number = Date.now): InstallationTokenCache {
  const tokens = new Map<string, RepositoryToken & { expiresAt: Date }>();
  const pending = new Map<string, Promise<RepositoryToken & { expiresAt: Date }>>();
  return {
    async get({ installationId, owner, repo, permissions }, refresh = false) {
      const key = `${installationId}/${owner}/${repo}/${permissionsKey(permissions)}`.toLowerCase();
      const cached = tokens.get(key);
      if (!refresh && cached !== undefined && cached.expiresAt.getTime() - now() > TOKEN_REFRESH_MARGIN_MS) return cached;
      const inFlight = pending.get(key);
      if (inFlight !== undefined) return inFlight;
      const minting = mint({ installationId, repository: repo, permissions })
        .then((reply) => {
          const parsed = parseAt(InstallationTokenReply, reply, `GitHub installation token for ${owner}/${repo}`);
          const token = { token: parsed.token, expiresAt: new Date(parsed.expires_at) };
          tokens.set(key, token);
          return token;
        })
        .finally(() => pending.delete(key));
      pending.set(key, minting);
      return minting;
    },
  };
}

function permissionsKey(permissions: InstallationPermissions): string {
  return Object.entries(permissions)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, level]) => `${name}:${String(level)}`)
    .join(',');
}
