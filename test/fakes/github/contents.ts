/**
 * Files in the bare repository: the contents API for one path at a branch, tag or commit (the
 * default branch when no `ref` is given), as GitHub answers it: a file's content in base64 lines,
 * a directory as the list of its entries, 404 for a path or ref that names nothing. Tests put
 * files on a branch with `commitFiles`, as a push would.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { branchSha, commitTree, git, resolveCommit, runGit } from './bare-repo.js';
import { repoHtml, repoUrl } from './shapes.js';
import { json, needs, notFound, route, type Route, type RouteContext } from './routes.js';

interface Entry {
  mode: string;
  type: 'blob' | 'tree';
  sha: string;
  size: number;
  path: string;
}

export const contentRoutes: Route[] = [
  route('GET', '/repos/{owner}/{repo}/contents/{path}', needs('read', 'contents'), async (ctx) => {
    const ref = ctx.query.get('ref') ?? ctx.repo.defaultBranch;
    const commit = (await branchSha(ctx.repo.dir, ref)) ?? (await resolveCommit(ctx.repo.dir, ref));
    const path = (ctx.params.path ?? '').replace(/^\/+|\/+$/g, '');
    if (commit === undefined || path === '') throw notFound();
    const entry = (await entriesAt(ctx.repo.dir, commit, [path]))[0];
    if (entry === undefined) throw notFound();
    if (entry.type === 'tree') {
      const children = await entriesAt(ctx.repo.dir, commit, [`${path}/`]);
      return json(children.map((child) => entryShape(ctx, ref, child)));
    }
    const content = Buffer.from((await runGit(ctx.repo.dir, ['cat-file', 'blob', entry.sha])).stdout, 'utf8');
    return json({ ...entryShape(ctx, ref, entry), encoding: 'base64', content: content.toString('base64').replace(/.{60}/g, '$&\n') });
  }),
];

/** Commits `files` (path → content, null to delete) on `branch`, starting it at the default branch when it does not exist. */
export async function commitFiles(dir: string, branch: string, from: string, files: Record<string, string | null>, message: string): Promise<string> {
  const parent = (await branchSha(dir, branch)) ?? (await branchSha(dir, from));
  if (parent === undefined) throw new Error(`fake GitHub: no branch ${branch} or ${from} in ${dir}`);
  const scratch = await mkdtemp(join(tmpdir(), 'fake-github-files-'));
  const env = { GIT_DIR: dir, GIT_WORK_TREE: scratch, GIT_INDEX_FILE: join(scratch, 'index') };
  try {
    await git(dir, ['read-tree', parent], env);
    for (const [path, content] of Object.entries(files)) {
      if (content === null) {
        await git(dir, ['update-index', '--force-remove', '--', path], env);
        continue;
      }
      const file = join(scratch, 'blob');
      await writeFile(file, content);
      const sha = await git(dir, ['hash-object', '-w', file]);
      await git(dir, ['update-index', '--add', '--cacheinfo', `100644,${sha},${path}`], env);
    }
    const tree = await git(dir, ['write-tree'], env);
    const commit = await commitTree(dir, tree, [parent], message);
    await git(dir, ['update-ref', `refs/heads/${branch}`, commit]);
    return commit;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function entriesAt(dir: string, commit: string, paths: string[]): Promise<Entry[]> {
  const result = await runGit(dir, ['ls-tree', '-z', '-l', commit, '--', ...paths]);
  if (result.code !== 0) return [];
  return result.stdout
    .split('\0')
    .map((line) => /^(\d+) (blob|tree) ([0-9a-f]+) +(-|\d+)\t(.+)$/s.exec(line))
    .filter((m) => m !== null)
    .map(([, mode = '', type, sha = '', size = '-', path = '']) => ({ mode, type: type === 'tree' ? 'tree' : 'blob', sha, size: size === '-' ? 0 : Number(size), path }));
}

function entryShape(ctx: RouteContext, ref: string, entry: Entry) {
  const name = entry.path.split('/').at(-1) ?? entry.path;
  const url = `${repoUrl(ctx.urls, ctx.repo)}/contents/${entry.path}?ref=${encodeURIComponent(ref)}`;
  const kind = entry.type === 'tree' ? 'tree' : 'blob';
  const html = `${repoHtml(ctx.urls, ctx.repo)}/${kind}/${ref}/${entry.path}`;
  const gitUrl = `${repoUrl(ctx.urls, ctx.repo)}/git/${entry.type === 'tree' ? 'trees' : 'blobs'}/${entry.sha}`;
  return {
    type: entry.type === 'tree' ? 'dir' : entry.mode === '120000' ? 'symlink' : 'file',
    name,
    path: entry.path,
    sha: entry.sha,
    size: entry.size,
    url,
    html_url: html,
    git_url: gitUrl,
    download_url: entry.type === 'tree' ? null : `${ctx.urls.web}/${ctx.repo.owner}/${ctx.repo.name}/raw/${ref}/${entry.path}`,
    _links: { self: url, git: gitUrl, html },
  };
}
