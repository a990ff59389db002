/**
 * Performs a patch's planned file changes in order. Planning already checked everything it can,
 * so a failure here is the disk's (permissions, space, a file changed meanwhile); the changes made
 * before it are then undone, newest first, so the tree is left as it was found.
 */
import { lstat, mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StagegateError, errorMessage } from '../../../core/errors.js';
import { hasErrorCode } from './has-error-code.js';

/** `path` is absolute and physical (no symbolic links); `display` names it in messages. */
export type FileChange =
  | { type: 'write'; path: string; display: string; content: string }
  | { type: 'remove'; path: string; display: string };

/** How to put one path back: its bytes and mode before the change, and the directory it created. */
interface Undo {
  path: string;
  before: { bytes: Buffer; mode: number } | undefined;
  createdDirectory: string | undefined;
}

export async function writeChanges(changes: readonly FileChange[]): Promise<void> {
  const done: Undo[] = [];
  for (const change of changes) {
    try {
      const undo: Undo = { path: change.path, before: await readIfPresent(change.path), createdDirectory: undefined };
      done.push(undo);
      if (change.type === 'write') {
        undo.createdDirectory = await mkdir(path.dirname(change.path), { recursive: true });
        await writeFile(change.path, change.content);
      } else {
        await unlink(change.path);
      }
    } catch (err) {
      const undoFailures = await undoAll(done);
      const note =
        undoFailures.length === 0
          ? 'no file was changed'
          : `undoing the earlier changes also failed: ${undoFailures.join('; ')}`;
      throw new StagegateError(
        'PATCH_REJECTED',
        `could not ${change.type === 'write' ? 'write' : 'delete'} '${change.display}': ${errorMessage(err)}; ${note}`,
        { cause: err, details: { path: change.display, undoFailures } },
      );
    }
  }
}

async function readIfPresent(file: string): Promise<Undo['before']> {
  try {
    const stats = await lstat(file);
    return { bytes: await readFile(file), mode: stats.mode };
  } catch (err) {
    if (hasErrorCode(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** Undoes every change, newest first; returns one line per step that failed, none dropped. */
async function undoAll(done: readonly Undo[]): Promise<string[]> {
  const failures: string[] = [];
  for (const undo of done.toReversed()) {
    try {
      await restore(undo);
    } catch (err) {
      failures.push(`${undo.path}: ${errorMessage(err)}`);
    }
  }
  return failures;
}

async function restore({ path: file, before, createdDirectory }: Undo): Promise<void> {
  if (before === undefined) await rm(file, { force: true });
  else await writeFile(file, before.bytes, { mode: before.mode });
  // Created by this patch, so it holds nothing but what the undone changes put there.
  if (createdDirectory !== undefined) await rm(createdDirectory, { recursive: true, force: true });
}
