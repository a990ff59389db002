/**
 * Whose limits a task counts against: its repository (`owner/repo`, lower-cased, as GitHub
 * compares them) and the repository's owner (an organisation or a user). A GitHub task names
 * both in its source; a task from the CLI or the API, by the last two path segments of its
 * repository URL (`https://github.com/acme/app.git` and `git@github.com:acme/app.git` are both
 * acme/app, the same as issues of acme/app); a local path is a repository of its own, with no
 * owner. Also how these and user names become KV key tokens. Pure.
 */
import type { TaskSpec } from '../../core/bus/messages.js';

export interface Account {
  repo: string;
  org: string | undefined;
}

const URL_LIKE = /^[a-z][a-z0-9+.-]*:\/\//i;
const SCP_LIKE = /^[^/@\s]+@[^/:\s]+:(.+)$/;

export function accountOf(spec: TaskSpec): Account {
  if (spec.source !== undefined) {
    const org = spec.source.owner.toLowerCase();
    return { repo: `${org}/${spec.source.repo.toLowerCase()}`, org };
  }
  const path = URL_LIKE.test(spec.repo) ? urlPath(spec.repo) : SCP_LIKE.exec(spec.repo)?.[1];
  const segments = (path ?? '').split('/').filter((s) => s !== '');
  const [owner, name] = segments.slice(-2);
  if (path === undefined || owner === undefined || name === undefined) return { repo: spec.repo, org: undefined };
  const org = owner.toLowerCase();
  return { repo: `${org}/${name.replace(/\.git$/i, '').toLowerCase()}`, org };
}

function urlPath(url: string): string | undefined {
  try {
    return new URL(url).pathname;
  } catch {
    return undefined;
  }
}

/** A KV key token for any text: ASCII letters, digits, `-` and `_` as they are, every other byte as `=XX`. */
export function keyToken(text: string): string {
  let token = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    token += /[A-Za-z0-9_-]/.test(c) ? c : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return token;
}

/** The key token of an account's owner; `=` (never a token of a name) when it has none. */
export function orgToken(account: Account): string {
  return account.org === undefined ? '=' : keyToken(account.org);
}
