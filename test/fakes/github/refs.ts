/**
 * Branches and git references, read from and written to the bare repository.
 */
import { z } from 'zod';
import { branchSha, commitInfo, deleteBranch, git, resolveCommit, runGit } from './bare-repo.js';
import { nodeId, repoHtml, repoUrl } from './shapes.js';
import { json, needs, noContent, notFound, parseBody, route, unprocessable, type Route } from './routes.js';

const CreateRef = z.object({ ref: z.string().regex(/^refs\/.+/, 'expected a fully qualified ref (refs/heads/…)'), sha: z.string().regex(/^[0-9a-f]{40}$/) });

export const refRoutes: Route[] = [
  route('GET', '/repos/{owner}/{repo}/branches/{branch}', needs('read', 'contents'), async (ctx) => {
    const name = ctx.params.branch ?? '';
    const sha = await branchSha(ctx.repo.dir, name);
    if (sha === undefined) throw notFound();
    const info = await commitInfo(ctx.repo.dir, sha);
    const self = `${repoUrl(ctx.urls, ctx.repo)}/branches/${name}`;
    return json({
      name,
      commit: {
        sha,
        node_id: nodeId('Commit', parseInt(sha.slice(0, 8), 16)),
        url: `${repoUrl(ctx.urls, ctx.repo)}/commits/${sha}`,
        html_url: `${repoHtml(ctx.urls, ctx.repo)}/commit/${sha}`,
        commit: {
          message: info.message,
          author: info.author,
          committer: info.author,
          tree: { sha: await git(ctx.repo.dir, ['rev-parse', `${sha}^{tree}`]), url: '' },
          url: `${repoUrl(ctx.urls, ctx.repo)}/git/commits/${sha}`,
        },
        parents: info.parents.map((p) => ({ sha: p, url: `${repoUrl(ctx.urls, ctx.repo)}/commits/${p}` })),
      },
      _links: { self, html: `${repoHtml(ctx.urls, ctx.repo)}/tree/${name}` },
      protected: false,
      protection_url: `${self}/protection`,
    });
  }),
  route('GET', '/repos/{owner}/{repo}/git/ref/{ref}', needs('read', 'contents'), async (ctx) => {
    const ref = `refs/${ctx.params.ref ?? ''}`;
    const result = await runGit(ctx.repo.dir, ['rev-parse', '--verify', '--quiet', ref]);
    if (result.code !== 0) throw notFound();
    return json(refShape(ctx.urls.api, ctx.repo.owner, ctx.repo.name, ref, result.stdout.trim()));
  }),
  route('POST', '/repos/{owner}/{repo}/git/refs', needs('write', 'contents'), async (ctx) => {
    const body = parseBody(CreateRef, ctx.body);
    if ((await runGit(ctx.repo.dir, ['rev-parse', '--verify', '--quiet', body.ref])).code === 0) throw unprocessable('Reference already exists');
    if ((await resolveCommit(ctx.repo.dir, body.sha)) === undefined) throw unprocessable('Object does not exist');
    await git(ctx.repo.dir, ['update-ref', body.ref, body.sha, '']);
    return json(refShape(ctx.urls.api, ctx.repo.owner, ctx.repo.name, body.ref, body.sha), 201);
  }),
  route('DELETE', '/repos/{owner}/{repo}/git/refs/{ref}', needs('write', 'contents'), async (ctx) => {
    const ref = ctx.params.ref ?? '';
    if (!ref.startsWith('heads/') || !(await deleteBranch(ctx.repo.dir, ref.slice('heads/'.length)))) {
      throw unprocessable('Reference does not exist');
    }
    return noContent();
  }),
];

function refShape(api: string, owner: string, repo: string, ref: string, sha: string) {
  const url = `${api}/repos/${owner}/${repo}/git/${ref}`;
  return { ref, node_id: nodeId('Ref', parseInt(sha.slice(0, 8), 16)), url, object: { type: 'commit', sha, url: `${api}/repos/${owner}/${repo}/git/commits/${sha}` } };
}
