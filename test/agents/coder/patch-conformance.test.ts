/**
 * Runs OpenAI Codex's apply-patch scenarios (../shared/conformance/codex-apply-patch, see its
 * README) through our engine. They are not copied into the project: CI has the folder, a fresh
 * clone may not, and then this suite says so and is skipped.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StagegateError } from '../../../core/errors.js';
import { applyPatch } from '../../../agents/coder/patch/index.js';

const projectRoot = path.resolve(import.meta.dirname, '../../..');
const scenarioRoot = path.resolve(projectRoot, '../shared/conformance/codex-apply-patch');
const scenariosFound = existsSync(scenarioRoot);
const scenarios = scenariosFound
  ? readdirSync(scenarioRoot, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && existsSync(path.join(scenarioRoot, entry.name, 'patch.txt')))
      .map((entry) => entry.name)
      .sort()
  : [];

if (!scenariosFound) {
  console.log(`Codex apply-patch scenarios not found: expected them in ${scenarioRoot}; skipping their conformance suite.`);
}

/** The README's rule: these must be refused and leave the tree as it was. */
function mustBeRefused(name: string): boolean {
  return /reject|requires_|_fails/.test(name);
}

/** Codex keeps what it applied before the failure; we apply all or nothing (see apply-patch.ts). */
function isPartialSuccessScenario(name: string): boolean {
  return name.startsWith('015_');
}

const tempDirs: string[] = [];

afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function prepare(name: string): Promise<{ dir: string; patchText: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), `stagegate-conformance-${name}-`));
  tempDirs.push(dir);
  const input = path.join(scenarioRoot, name, 'input');
  if (existsSync(input)) await cp(input, dir, { recursive: true });
  return { dir, patchText: await readFile(path.join(scenarioRoot, name, 'patch.txt'), 'utf8') };
}

/** Every directory and file under `dir`, files with their bytes: the comparison Codex's runner makes. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  if (!existsSync(dir)) return tree;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    tree[path.relative(dir, full)] = entry.isDirectory() ? '(directory)' : (await readFile(full)).toString('base64');
  }
  return tree;
}

async function outcome(attempt: Promise<unknown>): Promise<StagegateError | undefined> {
  try {
    await attempt;
    return undefined;
  } catch (err) {
    if (err instanceof StagegateError) return err;
    throw err;
  }
}

const suiteName = scenariosFound
  ? `Codex apply-patch conformance (${scenarioRoot})`
  : `Codex apply-patch conformance (skipped: scenarios not found in ${scenarioRoot})`;

describe.skipIf(!scenariosFound)(suiteName, () => {
  it('finds the scenarios', () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(23);
  });

  it.each(scenarios)('passes scenario %s', async (name) => {
    const { dir, patchText } = await prepare(name);

    const error = await outcome(applyPatch(patchText, { cwd: dir }));

    if (isPartialSuccessScenario(name)) {
      expect(error?.code).toBe('PATCH_REJECTED');
      expect(await snapshot(dir)).toEqual(await snapshot(path.join(scenarioRoot, name, 'input')));
      return;
    }
    if (mustBeRefused(name)) expect(error, 'this scenario must be refused').toBeInstanceOf(StagegateError);
    else expect(error?.message, 'this scenario must apply').toBeUndefined();
    expect(await snapshot(dir)).toEqual(await snapshot(path.join(scenarioRoot, name, 'expected')));
  });

  it('applies a scenario end to end through the stagegate apply-patch command', async () => {
    const name = '004_move_to_new_directory';
    const { dir, patchText } = await prepare(name);

    const run = spawnSync(process.execPath, ['bin/stagegate.js', 'apply-patch', '--cwd', dir], {
      cwd: projectRoot,
      input: patchText,
      encoding: 'utf8',
      timeout: 30_000,
    });

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('R old/name.txt -> renamed/dir/name.txt\n');
    expect(await snapshot(dir)).toEqual(await snapshot(path.join(scenarioRoot, name, 'expected')));
  });
});
