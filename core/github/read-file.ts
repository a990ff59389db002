/**
 * One file of a repository through the contents API, at a branch (or the default branch when
 * none is named): its text; `missing` when there is no such file (404); `unreadable` with the
 * reason when the path is a directory or the file too large. Other failures throw.
 */
import { z } from 'zod';
import { parseAt } from '../parse.js';
import { gitHubStatusOf, type GitHubOctokit } from './client.js';

const ContentsReply = z.union([
  z.object({ type: z.literal('file'), size: z.number().int().nonnegative(), encoding: z.string(), content: z.string() }),
  z.array(z.unknown()),
  z.object({ type: z.string() }),
]);

export type RepoFile = { kind: 'file'; text: string } | { kind: 'missing' } | { kind: 'unreadable'; reason: string };

export async function readRepoFile(octokit: GitHubOctokit, where: { owner: string; repo: string; path: string; ref?: string }, maxBytes: number): Promise<RepoFile> {
  const { owner, repo, path, ref } = where;
  let data: unknown;
  try {
    ({ data } = await octokit.rest.repos.getContent({ owner, repo, path, ...(ref === undefined ? {} : { ref }) }));
  } catch (err) {
    if (gitHubStatusOf(err) === 404) return { kind: 'missing' };
    throw err;
  }
  const reply = parseAt(ContentsReply, data, `GitHub contents of ${owner}/${repo}:${path}`);
  if (Array.isArray(reply)) return { kind: 'unreadable', reason: 'expected a file, found a directory' };
  if (!('content' in reply)) return { kind: 'unreadable', reason: `expected a file, found a ${reply.type}` };
  if (reply.size > maxBytes) return { kind: 'unreadable', reason: `expected a file of at most ${maxBytes} bytes, found ${reply.size}` };
  // GitHub sends files over 1 MB without their content (encoding 'none').
  if (reply.encoding !== 'base64') return { kind: 'unreadable', reason: `expected base64 content, got encoding '${reply.encoding}'` };
  return { kind: 'file', text: Buffer.from(reply.content, 'base64').toString('utf8') };
}
