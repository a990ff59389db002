/**
 * A git failure it is known to give comes with the reason in plain words and the way out, ahead of
 * git's own terse output: a push GitHub refuses (over real git, with a bare repository whose
 * pre-receive hook answers as GitHub does), a repository that is not there or cannot be reached.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git } from '../../core/git/git.js';
import { explainGitFailure } from '../../core/git/git-failure.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sg-git-failure-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function pushAgainst(refusal: string | undefined): Promise<string> {
  const name = `r${Math.random().toString(36).slice(2, 8)}`;
  const bare = join(dir, `${name}.git`);
  const work = join(dir, name);
  await git(['init', '--quiet', '--bare', bare], { cwd: dir });
  if (refusal !== undefined) {
    await writeFile(join(bare, 'hooks', 'pre-receive'), `#!/bin/sh\necho '${refusal}' >&2\nexit 1\n`);
    await chmod(join(bare, 'hooks', 'pre-receive'), 0o755);
  }
  await git(['init', '--quiet', '--initial-branch=main', work], { cwd: dir });
  await writeFile(join(work, 'ci.yml'), 'on: push\n');
  await git(['add', '--all'], { cwd: work });
  await git(['commit', '--quiet', '-m', 'ci'], { cwd: work });
  return git(['push', '--quiet', bare, 'HEAD:refs/heads/stagegate/1-x'], { cwd: work }).then(
    () => 'pushed',
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
}

describe('push refusals', () => {
  it('says the token lacks the workflows permission, and how to grant it or avoid it', async () => {
    const message = await pushAgainst('refusing to allow a GitHub App to create or update workflow `.github/workflows/ci.yml` without `workflows` permission');
    expect(message.startsWith('push refused: the token lacks the workflows permission')).toBe(true);
    expect(message).toContain('grant the GitHub App `workflows: write`');
    expect(message).toContain('without `workflows` permission');
  });

  it('names a protected branch and a ruleset', async () => {
    expect(await pushAgainst('error: GH006: Protected branch update failed for refs/heads/stagegate/1-x.')).toMatch(/^push refused: the branch is protected on GitHub/);
    expect(await pushAgainst('error: GH013: Repository rule violations found for refs/heads/stagegate/1-x.')).toMatch(/^push refused by a repository ruleset/);
  });

  it('leaves other failures as git printed them, and a push that works alone', async () => {
    const other = await pushAgainst('something else went wrong');
    expect(other.startsWith('git push')).toBe(true);
    expect(await pushAgainst(undefined)).toBe('pushed');
    expect(explainGitFailure(['push'], ' ! [rejected]        HEAD -> main (fetch first)')).toContain('Stagegate never pushes over it');
    expect(explainGitFailure(['fetch'], ' ! [rejected]        HEAD -> main (fetch first)')).toBeUndefined();
  });

  it('says a repository is not there, or its server cannot be reached, and where to look', async () => {
    const missing = await git(['clone', '--quiet', join(dir, 'no-such-repo.git'), join(dir, 'nothing')], { cwd: dir }).catch((err: unknown) => String(err));
    expect(missing).toContain('the repository was not found: check the task\'s repository path or URL');
    const unreachable = await git(['ls-remote', 'http://127.0.0.1:9/acme/app.git'], { cwd: dir }).catch((err: unknown) => String(err));
    expect(unreachable).toContain("git could not reach the repository's server");
    expect(unreachable).toContain('STAGEGATE_GIT_GATEWAY_URL');
  });

  it('says a rebase was not pushed over a branch someone pushed to meanwhile (a lease that no longer holds)', async () => {
    const bare = join(dir, 'leased.git');
    const work = join(dir, 'leased');
    await git(['init', '--quiet', '--bare', bare], { cwd: dir });
    await git(['init', '--quiet', '--initial-branch=main', work], { cwd: dir });
    await writeFile(join(work, 'a.txt'), 'a\n');
    await git(['add', '--all'], { cwd: work });
    await git(['commit', '--quiet', '-m', 'a'], { cwd: work });
    const leased = (await git(['rev-parse', 'HEAD'], { cwd: work })).trim();
    await git(['push', '--quiet', bare, 'HEAD:refs/heads/stagegate/1-x'], { cwd: work });
    // Someone else's push moves the branch past the leased tip.
    await git(['commit', '--quiet', '--allow-empty', '-m', 'theirs'], { cwd: work });
    await git(['push', '--quiet', bare, 'HEAD:refs/heads/stagegate/1-x'], { cwd: work });
    await git(['commit', '--quiet', '--amend', '--allow-empty', '-m', 'rebased'], { cwd: work });

    const message = await git(['push', '--quiet', `--force-with-lease=refs/heads/stagegate/1-x:${leased}`, bare, 'HEAD:refs/heads/stagegate/1-x'], { cwd: work }).then(
      () => 'pushed',
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    expect(message).toMatch(/^push refused: the branch moved on GitHub while it was being rebased/);
    expect((await git(['log', '-1', '--format=%s', 'refs/heads/stagegate/1-x'], { cwd: bare })).trim()).toBe('theirs');
  });
});
