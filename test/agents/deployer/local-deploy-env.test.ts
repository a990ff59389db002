import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { deployLocally } from '../../../agents/deployer/strategies/local.js';
import type { DeployRequest } from '../../../core/bus/messages.js';
import { git } from '../../../core/git/git.js';
import { createLogger } from '../../../core/log.js';
import { createSmallRepo } from '../../helpers/small-repo.js';

const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

describe('the local deploy command', () => {
  it("runs with the operator's environment but none of Stagegate's own credentials", async () => {
    const repo = await createSmallRepo();
    await git(['checkout', '--quiet', '-b', 'stagegate/t-env'], { cwd: repo });
    await writeFile(join(repo, 'deploy.sh'), '#!/bin/sh\nenv > "$DEPLOY_ENV_OUT"\n');
    await git(['add', '--all'], { cwd: repo });
    await git(['commit', '--quiet', '-m', 'deploy script'], { cwd: repo });
    const commit = (await git(['rev-parse', 'HEAD'], { cwd: repo })).trim();
    await git(['checkout', '--quiet', 'main'], { cwd: repo });

    const out = join(await mkdtemp(join(tmpdir(), 'sg-deploy-env-')), 'env.txt');
    Object.assign(process.env, { OPENAI_API_KEY: 'sk-secret-1', GITHUB_TOKEN: 'ghp_secret2', SLACK_BOT_TOKEN: 'xoxb-secret3', DEPLOY_ENV_OUT: out, DEPLOY_TARGET: 'staging' });
    const job: DeployRequest = {
      type: 'deploy.request', taskId: 't-env', msgId: 't-env:deploy:1', sentAt: new Date().toISOString(), attempt: 1,
      task: { repo, title: 'env', body: '', base: 'main', submittedBy: 'tester' }, branch: 'stagegate/t-env', commit,
    };
    const ctx = { log: createLogger({ level: 'silent' }), progress: async () => {} };
    const outcome = await deployLocally({ workDir: await mkdtemp(join(tmpdir(), 'sg-deploy-work-')), commandTimeoutMs: 30_000, deployCommand: 'sh deploy.sh' }, job, ctx);

    expect(outcome.type).toBe('deploy.succeeded');
    const env = await readFile(out, 'utf8');
    expect(env).toContain('DEPLOY_TARGET=staging');
    for (const secret of ['sk-secret-1', 'ghp_secret2', 'xoxb-secret3']) expect(env).not.toContain(secret);
  });
});
