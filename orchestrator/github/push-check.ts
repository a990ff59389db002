/**
 * What the commits of a push are, judged from the push's own pack before it reaches GitHub: each
 * update must be a fast-forward, and no new commit may add a secret. The one exception is a
 * rebase update the task asked for (`mayReplace`): the branch may then be replaced, but only if
 * every commit the push drops from it is Stagegate's (authored and committed by its identity),
 * so a person's commit is never pushed over.
 *
 * The gateway advertises `no-thin`, so the pack holds every object its deltas need; it is indexed
 * in an empty scratch repository and the new commit's ancestry is walked through the commits in
 * it. Reaching the old tip proves a fast-forward. Reaching a commit that is not in the pack
 * (already on GitHub) other than the old tip proves nothing, and the update is refused: a push
 * that builds on the branch tip always reaches it inside its own pack.
 *
 * Every commit in the pack is new to GitHub and is scanned for secrets over its first parent
 * (`core/security/secret-scan.ts`). The parents that are not in the pack (the old tip; for a new
 * branch, the base commit it grew from) are fetched from GitHub first, one commit deep and without
 * file contents; the repository is a partial clone of GitHub, so git fetches the few older objects
 * a diff needs on demand, with the push's own credentials. To tell which commits a replacement
 * drops, the old tip's and the base's whole histories are fetched into a scratch repository of
 * their own, commits only (no trees or files): what the old tip reaches and the base does not is
 * what the push drops (the push's own commits are new to GitHub, so none of them is among it).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../../core/errors.js';
import { git, STAGEGATE_EMAIL } from '../../core/git/git.js';
import { describeFindings, scanCommits } from '../../core/security/secret-scan.js';
import { ZERO_SHA, type RefUpdate } from './pkt-line.js';

/** Commits walked per update before giving up (and refusing). */
const MAX_WALK = 2_000;

/** The repository on GitHub and the `Authorization` header value that reads it. */
export interface Upstream {
  url: string;
  authorization: string;
}

interface Walk {
  /** Commits in the pack: what the update adds, children before parents. */
  commits: string[];
  /** Parents of those that are not in the pack: already on GitHub. */
  outside: Set<string>;
  reachedOldTip: boolean;
}

export interface UpdateRules {
  /** The branch may be replaced rather than fast-forwarded (a rebase update), dropping only Stagegate's commits. */
  mayReplace: boolean;
}

/** Why each update may not pass (not a fast-forward, or adding a secret); updates that may have no entry. */
export async function refuseUnsafeUpdates(updates: readonly RefUpdate[], pack: Buffer, upstream: Upstream, rules: UpdateRules): Promise<Map<string, string>> {
  const refused = new Map<string, string>();
  const toCheck = updates.filter((u) => u.after !== ZERO_SHA && u.before !== u.after);
  if (toCheck.length === 0) return refused;
  if (pack.length === 0) {
    // A new branch at a commit GitHub has already adds nothing; an existing one must move forward.
    for (const u of toCheck) if (u.before !== ZERO_SHA) refused.set(u.ref, 'not a fast-forward: the push brings no new commit on top of the branch');
    return refused;
  }
  const dir = await mkdtemp(join(tmpdir(), 'sg-git-gateway-'));
  try {
    await git(['init', '--bare', '--quiet', dir], { cwd: tmpdir() });
    const packFile = join(dir, 'objects', 'pack', 'pack-incoming.pack');
    await writeFile(packFile, pack);
    try {
      await git(['index-pack', packFile], { cwd: dir });
    } catch (err) {
      for (const u of toCheck) refused.set(u.ref, `the pack cannot be read on its own (${errorMessage(err).slice(-120)})`);
      return refused;
    }
    for (const u of toCheck) {
      const why = await refusalOf(dir, u, upstream, rules);
      if (why !== undefined) refused.set(u.ref, why);
    }
    return refused;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function refusalOf(dir: string, update: RefUpdate, upstream: Upstream, rules: UpdateRules): Promise<string | undefined> {
  const walk = await walkNewCommits(dir, update);
  if (walk === undefined) return `not checked: more than ${MAX_WALK} new commits`;
  const replaces = update.before !== ZERO_SHA && !walk.reachedOldTip;
  if (replaces && !rules.mayReplace) {
    return `not a fast-forward of ${update.before.slice(0, 10)} (a force push): Stagegate replaces its branch only in a rebase update`;
  }
  try {
    const env = credentialEnv(upstream);
    if (replaces) {
      const dropped = await droppedCommits(upstream.url, update.before, [...walk.outside], env);
      const people = dropped.filter((c) => c.author !== STAGEGATE_EMAIL || c.committer !== STAGEGATE_EMAIL);
      if (people.length > 0) {
        return `the push would drop ${people.length === 1 ? 'a commit' : `${people.length} commits`} Stagegate did not make (${people.slice(0, 3).map((c) => `${c.sha.slice(0, 10)} by ${c.author === STAGEGATE_EMAIL ? c.committer : c.author}`).join(', ')}): a person's commits are never pushed over`;
      }
    }
    if (walk.outside.size > 0) await fetchParents(dir, upstream.url, [...walk.outside], env);
    const findings = await scanCommits(dir, walk.commits, { env });
    return findings.length === 0 ? undefined : `secret found: ${describeFindings(findings)}`;
  } catch (err) {
    return `not checked (${errorMessage(err).slice(-160)})`;
  }
}

/** The commits `after` brings that are in the pack, walking back until the old tip or GitHub's commits. */
async function walkNewCommits(dir: string, update: RefUpdate): Promise<Walk | undefined> {
  const walk: Walk = { commits: [], outside: new Set(), reachedOldTip: false };
  const seen = new Set<string>();
  const queue = [update.after];
  while (queue.length > 0) {
    const sha = queue.shift() as string;
    if (seen.has(sha)) continue;
    seen.add(sha);
    if (sha === update.before) {
      walk.reachedOldTip = true;
      walk.outside.add(sha);
      continue;
    }
    if (seen.size > MAX_WALK) return undefined;
    const parents = await parentsIn(dir, sha);
    // Not in the pack: a commit GitHub has already.
    if (parents === undefined) {
      walk.outside.add(sha);
      continue;
    }
    walk.commits.push(sha);
    queue.push(...parents);
  }
  return walk;
}

async function parentsIn(dir: string, sha: string): Promise<string[] | undefined> {
  let text: string;
  try {
    text = await git(['cat-file', 'commit', sha], { cwd: dir });
  } catch {
    return undefined;
  }
  const header = text.split('\n\n')[0] ?? '';
  return header
    .split('\n')
    .filter((line) => line.startsWith('parent '))
    .map((line) => line.slice('parent '.length).trim());
}

/** The parents' trees from GitHub, blobs left out where the server allows (the scan fetches the ones a diff needs). */
async function fetchParents(dir: string, url: string, shas: readonly string[], env: Record<string, string>): Promise<void> {
  await git(['config', 'remote.origin.url', url], { cwd: dir });
  await git(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--depth=1', '--filter=blob:none', 'origin', ...shas], { cwd: dir, env });
}

/**
 * The commits `oldTip` reaches and `kept` (the commits on GitHub the new tip builds on) do not,
 * with their author's and committer's email, from whole histories fetched without trees.
 */
async function droppedCommits(url: string, oldTip: string, kept: readonly string[], env: Record<string, string>): Promise<{ sha: string; author: string; committer: string }[]> {
  const dir = await mkdtemp(join(tmpdir(), 'sg-git-gateway-history-'));
  try {
    await git(['init', '--bare', '--quiet', dir], { cwd: tmpdir() });
    await git(['config', 'remote.origin.url', url], { cwd: dir });
    await git(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--filter=tree:0', 'origin', oldTip, ...kept], { cwd: dir, env });
    const out = await git(['log', '--format=%H %ae %ce', oldTip, '--not', ...kept], { cwd: dir });
    return out
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [sha = '', author = '', committer = ''] = line.split(' ');
        return { sha, author, committer };
      });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The credentials as git configuration in the environment: never in an argument, a file or an error message. */
function credentialEnv(upstream: Upstream): Record<string, string> {
  return { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: `Authorization: ${upstream.authorization}` };
}
