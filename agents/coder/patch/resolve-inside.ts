/**
 * Where a patch path lands inside the working tree. A patch comes from a model, so its paths are
 * untrusted: an absolute path, a `..` that climbs out, or a symbolic link (any existing component,
 * the last one included) that leads out is refused with PATH_ESCAPE before anything is read.
 * Symbolic links are followed the way the kernel follows them when the file is opened, and the
 * physical path is returned, so the place checked is the place written.
 */
import { isInside } from '../../../core/fs/is-inside.js';
import { readlink } from 'node:fs/promises';
import path from 'node:path';
import { StagegateError } from '../../../core/errors.js';
import { hasErrorCode } from './has-error-code.js';

export interface ResolvedPath {
  /** The path as the patch wrote it, normalised and relative to the working directory. */
  display: string;
  /** Absolute physical path: every symbolic link on the way, the last component's included, followed. */
  path: string;
  /** The last component is itself a symbolic link (to `path`). */
  isSymbolicLink: boolean;
}

/** Links followed before giving up, as the kernel's ELOOP limit does. */
const MAX_LINKS = 40;

/** `root` must already be a real path (no symbolic links in it). */
export async function resolveInside(root: string, patchPath: string): Promise<ResolvedPath> {
  if (path.isAbsolute(patchPath)) {
    throw refused(patchPath, 'is an absolute path; patch paths must be relative to the working directory');
  }
  const display = path.posix.normalize(patchPath).replace(/\/$/, '');
  if (display === '..' || display.startsWith('../')) throw refused(patchPath, 'climbs out of the working directory');
  const parts = patchPath.split('/').filter((part) => part !== '' && part !== '.');
  const last = parts.at(-1);
  let entry: string;
  let target: string;
  if (last === undefined || last === '..') {
    entry = target = await follow(root, parts, patchPath);
  } else {
    const parent = await follow(root, parts.slice(0, -1), patchPath);
    entry = path.join(parent, last);
    target = await follow(parent, [last], patchPath);
  }
  if (!isInside(root, entry) || !isInside(root, target)) {
    throw refused(patchPath, `leads outside the working directory through a symbolic link (to ${target})`);
  }
  return { display, path: target, isSymbolicLink: target !== entry };
}

/** Walks `parts` from `start` as the kernel would: links replaced by their targets, `..` taken physically. */
async function follow(start: string, parts: readonly string[], patchPath: string): Promise<string> {
  const pending = [...parts];
  let current = start;
  let links = 0;
  for (let part = pending.shift(); part !== undefined; part = pending.shift()) {
    if (part === '..') {
      current = path.dirname(current);
      continue;
    }
    const next = path.join(current, part);
    const target = await readLinkIfAny(next);
    if (target === undefined) {
      current = next;
      continue;
    }
    links += 1;
    if (links > MAX_LINKS) {
      throw new StagegateError('PATCH_REJECTED', `cannot resolve '${patchPath}': more than ${MAX_LINKS} symbolic links`, {
        details: { path: patchPath },
      });
    }
    pending.unshift(...target.split('/').filter((segment) => segment !== '' && segment !== '.'));
    if (path.isAbsolute(target)) current = path.parse(target).root;
  }
  return current;
}

/** The link's target, or undefined when the path is no link (or does not exist yet). */
async function readLinkIfAny(candidate: string): Promise<string | undefined> {
  try {
    return await readlink(candidate);
  } catch (err) {
    if (hasErrorCode(err, 'EINVAL', 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

function refused(patchPath: string, why: string): StagegateError {
  return new StagegateError('PATH_ESCAPE', `refused path '${patchPath}': it ${why}`, { details: { path: patchPath } });
}
