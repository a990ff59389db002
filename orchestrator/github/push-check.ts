/**
 * Whether each update of a push is a fast-forward, judged from the push's own pack before it
 * reaches GitHub. The gateway advertises `no-thin`, so the pack holds every object its deltas
 * need; it is indexed in an empty scratch repository and the new commit's ancestry is walked
 * through the commits in it. Reaching the old tip proves a fast-forward. Reaching a commit that
 * is not in the pack (already on GitHub) other than the old tip proves nothing, and the update is
 * refused: a push that builds on the branch tip always reaches it inside its own pack.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../../core/errors.js';
import { git } from '../../core/git/git.js';
import { ZERO_SHA, type RefUpdate } from './pkt-line.js';

/** Commits walked per update before giving up (and refusing). */
const MAX_WALK = 2_000;

/** Why each update that is not a fast-forward is refused; updates that are have no entry. */
export async function refuseNonFastForwards(updates: readonly RefUpdate[], pack: Buffer): Promise<Map<string, string>> {
  const refused = new Map<string, string>();
  const toCheck = updates.filter((u) => u.before !== ZERO_SHA && u.after !== ZERO_SHA && u.before !== u.after);
  if (toCheck.length === 0) return refused;
  if (pack.length === 0) {
    for (const u of toCheck) refused.set(u.ref, 'not a fast-forward: the push brings no new commit on top of the branch');
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
      const why = await walkToOldTip(dir, u);
      if (why !== undefined) refused.set(u.ref, why);
    }
    return refused;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Undefined when `after` reaches `before` through the pack's commits; else why not. */
async function walkToOldTip(dir: string, update: RefUpdate): Promise<string | undefined> {
  const seen = new Set<string>();
  const queue = [update.after];
  while (queue.length > 0) {
    const sha = queue.shift() as string;
    if (sha === update.before) return undefined;
    if (seen.has(sha)) continue;
    seen.add(sha);
    if (seen.size > MAX_WALK) return `not checked: more than ${MAX_WALK} new commits`;
    const parents = await parentsIn(dir, sha);
    // Not in the pack: a commit GitHub has already, which is not the branch tip.
    if (parents === undefined) continue;
    queue.push(...parents);
  }
  return `not a fast-forward of ${update.before.slice(0, 10)} (a force push): Stagegate only adds commits to its branch`;
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
