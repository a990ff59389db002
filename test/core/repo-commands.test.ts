import { describe, expect, it } from 'vitest';
import { commandsFor, detectCommands } from '../../core/repo/commands.js';
import { cloneOnBranch, createFilesRepo, type FileMap } from '../helpers/files-repo.js';

const pkg = (scripts: Record<string, string>, extra: Record<string, unknown> = {}) => JSON.stringify({ name: 'app', scripts, ...extra });

async function detect(main: FileMap, branches: Record<string, FileMap> = {}, branch = 'main') {
  return detectCommands(await cloneOnBranch(await createFilesRepo(main, branches), branch), 'main');
}

describe('repository commands', () => {
  it.each([
    ['package-lock.json', 'npm', 'npm test', 'npm run lint'],
    ['pnpm-lock.yaml', 'pnpm', 'pnpm test', 'pnpm run lint'],
    ['yarn.lock', 'yarn', 'yarn test', 'yarn run lint'],
    ['bun.lockb', 'bun', 'bun run test', 'bun run lint'],
  ])('runs package.json scripts with the package manager %s names (%s)', async (lockfile, manager, test, lint) => {
    const found = await detect({ 'package.json': pkg({ test: 'vitest run', lint: 'eslint .', build: 'tsc' }), [lockfile]: '{}' });
    expect(found.packageManager).toBe(manager);
    expect(found.commands).toEqual({ test, lint, build: `${manager} run build` });
    expect(found.sources).toEqual({ test: 'package.json', lint: 'package.json', build: 'package.json' });
  });

  it('takes the packageManager field when there is no lockfile, and npm when there is neither', async () => {
    expect((await detect({ 'package.json': pkg({ test: 'x' }, { packageManager: 'pnpm@9.12.0' }) })).commands).toEqual({ test: 'pnpm test' });
    expect((await detect({ 'package.json': pkg({ test: 'x' }) })).commands).toEqual({ test: 'npm test' });
  });

  it('falls back to Makefile targets, then to commands an instruction file names, per command', async () => {
    const found = await detect({
      'package.json': pkg({ test: 'node --test' }),
      Makefile: 'LINT := ruff\nlint:\n\truff check .\nbuild := nope\n',
      'AGENTS.md': '# Conventions\n\n- **Build:** `cargo build --release`\n- Test: `pytest -q`\n',
    });
    expect(found.commands).toEqual({ test: 'npm test', lint: 'make lint', build: 'cargo build --release' });
    expect(found.sources).toEqual({ test: 'package.json', lint: 'Makefile', build: 'AGENTS.md' });
  });

  it('reads the commands from the default branch, not from the branch the clone is on', async () => {
    const found = await detect(
      { 'package.json': pkg({ test: 'node --test' }), 'package-lock.json': '{}' },
      { 'stagegate/t-1': { 'package.json': pkg({ test: 'exit 0', lint: 'exit 0' }), 'package-lock.json': null, 'yarn.lock': '' } },
      'stagegate/t-1',
    );
    expect(found.commands).toEqual({ test: 'npm test' });
    expect(found.packageManager).toBe('npm');
  });

  it('finds nothing in a repository without any of the sources', async () => {
    expect(await detect({ 'README.md': 'Test: run it by hand\n' })).toEqual({ commands: {}, packageManager: undefined, sources: {} });
  });

  it("lets the task's own commands win over the detected ones", () => {
    expect(commandsFor({ lintCommand: 'ruff check .' }, { test: 'npm test', lint: 'npm run lint' })).toEqual({ test: 'npm test', lint: 'ruff check .' });
    expect(commandsFor({}, { build: 'make build' })).toEqual({ build: 'make build' });
  });
});
