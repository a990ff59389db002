/**
 * Files of a repository as they are at one revision (the default branch's tip, `origin/<base>`),
 * read from git's objects and never from the working tree: what a task's branch changes does not
 * show here. A symbolic link inside the repository is followed one step (`CLAUDE.md` → `AGENTS.md`
 * is common); one leading out of it, or to another link, is left out.
 */
import { posix } from 'node:path';
import { git } from '../git/git.js';

export interface FileAt {
  path: string;
  text: string;
  /** The path the file is a link to, when it is one. */
  linkTo?: string;
}

interface TreeEntry {
  mode: string;
  type: string;
  sha: string;
  size: number;
}

/** Larger files are left out unread: no file a model is shown, or a command is found in, is this big. */
const MAX_FILE_BYTES = 1_000_000;

export async function commitOf(dir: string, rev: string): Promise<string> {
  return (await git(['rev-parse', '--verify', `${rev}^{commit}`], { cwd: dir })).trim();
}

/** Which of `paths` exist at `rev` (as files or links). */
export async function pathsAt(dir: string, rev: string, paths: readonly string[]): Promise<Set<string>> {
  return new Set((await treeEntries(dir, rev, paths)).keys());
}

/** The text of each of `paths` that exists at `rev` as a text file, in the order asked. */
export async function readFilesAt(dir: string, rev: string, paths: readonly string[]): Promise<FileAt[]> {
  const entries = await treeEntries(dir, rev, paths);
  const files: FileAt[] = [];
  for (const path of paths) {
    let entry = entries.get(path);
    let linkTo: string | undefined;
    if (entry?.mode === '120000') {
      linkTo = linkTarget(path, await git(['cat-file', 'blob', entry.sha], { cwd: dir }));
      entry = linkTo === undefined ? undefined : (await treeEntries(dir, rev, [linkTo])).get(linkTo);
      if (entry?.mode === '120000') entry = undefined;
    }
    if (entry === undefined || entry.type !== 'blob' || entry.size > MAX_FILE_BYTES) continue;
    const text = await git(['cat-file', 'blob', entry.sha], { cwd: dir });
    if (text.includes('\u0000')) continue;
    files.push({ path, text, ...(linkTo === undefined ? {} : { linkTo }) });
  }
  return files;
}

async function treeEntries(dir: string, rev: string, paths: readonly string[]): Promise<Map<string, TreeEntry>> {
  if (paths.length === 0) return new Map();
  // `:(top,literal)` names each path from the repository's root, with no pattern characters.
  const out = await git(['ls-tree', '-z', '-l', rev, '--', ...paths.map((p) => `:(top,literal)${p}`)], { cwd: dir });
  const entries = new Map<string, TreeEntry>();
  for (const line of out.split('\0')) {
    const match = /^(\d+) (\w+) ([0-9a-f]+) +(-|\d+)\t(.+)$/s.exec(line);
    if (match === null) continue;
    const [, mode = '', type = '', sha = '', size = '-', path = ''] = match;
    entries.set(path, { mode, type, sha, size: size === '-' ? 0 : Number(size) });
  }
  return entries;
}

/** The repository path a link points at, or undefined when it points outside the repository. */
function linkTarget(path: string, target: string): string | undefined {
  if (target.startsWith('/')) return undefined;
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  return resolved.startsWith('../') || resolved === '..' ? undefined : resolved;
}
