/**
 * Applies a Codex-format patch to the files under a working directory.
 *
 * ALL OR NOTHING. Every operation is first played against an in-memory view of the tree (so a
 * later operation sees what an earlier one did, as in Codex), every path is checked to stay inside
 * the working directory, and every new file content is computed; only when all of that succeeded
 * is anything written, and a write that still fails undoes the ones before it. Codex instead
 * applies operations one by one and keeps those made before a failure (its conformance scenario
 * 015); the scenarios' README allows either. We choose atomic: an unattended agent's half-applied
 * patch leaves a tree nobody asked for, while a refused patch can simply be fixed and sent again.
 *
 * Semantics otherwise follow Codex: Add File overwrites an existing file; Move to overwrites its
 * destination and creates missing directories; Delete File and Update File need an existing
 * regular file; an updated file always ends with a newline. Deleting or moving a symbolic link
 * itself is refused (reading and writing through one that stays inside the tree is fine).
 */
import { realpath, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { StagegateError, errorMessage } from '../../../core/errors.js';
import { applyChunks } from './apply-chunks.js';
import { hasErrorCode } from './has-error-code.js';
import { parsePatch, type PatchOperation } from './parse-patch.js';
import { isInside } from '../../../core/fs/is-inside.js';
import { resolveInside, type ResolvedPath } from './resolve-inside.js';
import { writeChanges, type FileChange } from './write-changes.js';

/** What a patch changed, paths relative to the working directory; each operation is listed once. */
export interface AppliedPatch {
  added: string[];
  modified: string[];
  deleted: string[];
  moved: Array<{ from: string; to: string }>;
}

export interface ApplyPatchOptions {
  /** The directory patch paths are relative to; nothing outside it is read or written. */
  cwd: string;
}

export async function applyPatch(patchText: string, options: ApplyPatchOptions): Promise<AppliedPatch> {
  const operations = parsePatch(patchText);
  const tree = new PlannedTree(await workingDirectory(options.cwd));
  const applied: AppliedPatch = { added: [], modified: [], deleted: [], moved: [] };
  for (const operation of operations) await plan(operation, tree, applied);
  await writeChanges(tree.changes);
  return applied;
}

async function plan(operation: PatchOperation, tree: PlannedTree, applied: AppliedPatch): Promise<void> {
  const target = await tree.resolve(operation.path);
  if (operation.type === 'add') {
    await tree.write(target, operation.contents, 'add');
    applied.added.push(target.display);
    return;
  }
  if (operation.type === 'delete') {
    await tree.expectRegularFile(target, 'delete');
    tree.remove(target);
    applied.deleted.push(target.display);
    return;
  }
  await tree.expectRegularFile(target, operation.moveTo === undefined ? 'update' : 'move');
  const content = applyChunks(await tree.read(target), operation.chunks, target.display);
  const destination = operation.moveTo === undefined ? target : await tree.resolve(operation.moveTo);
  if (destination.path === target.path) {
    await tree.write(target, content, 'update');
    applied.modified.push(target.display);
    return;
  }
  await tree.write(destination, content, 'move to');
  tree.remove(target);
  applied.moved.push({ from: target.display, to: destination.display });
}

type Kind = 'file' | 'directory' | 'missing' | 'other';

/** The tree as it will be after the operations planned so far, and the writes that make it so. */
class PlannedTree {
  readonly changes: FileChange[] = [];
  /** Planned file contents by physical path; null once planned for deletion. */
  private readonly files = new Map<string, string | null>();
  private readonly createdDirectories = new Set<string>();

  constructor(private readonly root: string) {}

  resolve(patchPath: string): Promise<ResolvedPath> {
    return resolveInside(this.root, patchPath);
  }

  private async kindOf(file: string): Promise<Kind> {
    const planned = this.files.get(file);
    if (planned !== undefined) return planned === null ? 'missing' : 'file';
    if (this.createdDirectories.has(file)) return 'directory';
    try {
      const stats = await stat(file);
      return stats.isFile() ? 'file' : stats.isDirectory() ? 'directory' : 'other';
    } catch (err) {
      if (hasErrorCode(err, 'ENOENT', 'ENOTDIR')) return 'missing';
      throw err;
    }
  }

  /** Delete, Update and Move need an existing regular file; only Update may reach it through a link. */
  async expectRegularFile(target: ResolvedPath, verb: 'delete' | 'update' | 'move'): Promise<void> {
    const kind = await this.kindOf(target.path);
    if (kind === 'missing') throw rejected(target, verb, 'no such file');
    if (kind === 'directory') throw rejected(target, verb, 'it is a directory, and only files can be patched');
    if (kind === 'other') throw rejected(target, verb, 'it is not a regular file');
    // Removing the link would leave its target behind under another name: too surprising to guess at.
    if (target.isSymbolicLink && verb !== 'update') {
      throw rejected(target, verb, 'it is a symbolic link; only regular files are deleted or moved');
    }
  }

  async read(target: ResolvedPath): Promise<string> {
    const planned = this.files.get(target.path);
    if (typeof planned === 'string') return planned;
    try {
      // Codex reads files as UTF-8 and refuses others rather than mangle them on the way back.
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(await readFile(target.path));
    } catch (err) {
      throw rejected(target, 'update', err instanceof TypeError ? 'it is not UTF-8 text' : errorMessage(err), err);
    }
  }

  /** Creates or replaces the file, and the directories above it; only a directory is in the way. */
  async write(target: ResolvedPath, content: string, verb: 'add' | 'update' | 'move to'): Promise<void> {
    const kind = await this.kindOf(target.path);
    if (kind === 'directory') throw rejected(target, verb, 'a directory is in the way');
    if (kind === 'other') throw rejected(target, verb, 'something other than a regular file is in the way');
    for (const directory of this.ancestors(target.path)) {
      const above = await this.kindOf(directory);
      if (above === 'file' || above === 'other') {
        throw rejected(target, verb, `'${path.relative(this.root, directory)}' is a file, not a directory`);
      }
      if (above === 'missing') this.createdDirectories.add(directory);
    }
    this.files.set(target.path, content);
    this.changes.push({ type: 'write', path: target.path, display: target.display, content });
  }

  remove(target: ResolvedPath): void {
    this.files.set(target.path, null);
    this.changes.push({ type: 'remove', path: target.path, display: target.display });
  }

  /** Directories between the root (excluded) and the file, outermost first. */
  private ancestors(file: string): string[] {
    const directories: string[] = [];
    let directory = path.dirname(file);
    while (directory !== this.root && isInside(this.root, directory)) {
      directories.unshift(directory);
      directory = path.dirname(directory);
    }
    return directories;
  }
}

async function workingDirectory(cwd: string): Promise<string> {
  const absolute = path.resolve(cwd);
  const real = await realpath(absolute).catch((err: unknown) => {
    if (hasErrorCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  });
  if (real === undefined || !(await stat(real)).isDirectory()) {
    throw new StagegateError('PATCH_REJECTED', `cannot apply a patch in '${absolute}': it is not a directory`, {
      details: { cwd: absolute },
    });
  }
  return real;
}

function rejected(target: ResolvedPath, verb: string, why: string, cause?: unknown): StagegateError {
  return new StagegateError('PATCH_REJECTED', `cannot ${verb} '${target.display}': ${why}`, {
    cause,
    details: { path: target.display },
  });
}
