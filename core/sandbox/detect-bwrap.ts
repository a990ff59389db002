/**
 * Whether bubblewrap is installed AND works here: a container without user namespaces, or
 * one that forbids mounting /proc, has the binary but cannot use it. The probe runs the same
 * isolation the sandbox asks for, once per binary path; the answer is kept for the process.
 */
import { execFile } from 'node:child_process';

export type BwrapStatus = { usable: true; path: string } | { usable: false; path: string; reason: string };

const PROBE_TIMEOUT_MS = 10_000;
const cache = new Map<string, Promise<BwrapStatus>>();

export function detectBwrap(bwrapPath = 'bwrap'): Promise<BwrapStatus> {
  let status = cache.get(bwrapPath);
  if (status === undefined) {
    status = probe(bwrapPath);
    cache.set(bwrapPath, status);
  }
  return status;
}

/** The flags every sandboxed command gets, minus the binds that depend on the command. */
export const ISOLATION_FLAGS: readonly string[] = [
  '--unshare-net',
  '--unshare-pid',
  '--unshare-ipc',
  '--unshare-uts',
  '--die-with-parent',
  '--new-session',
];

function probe(bwrapPath: string): Promise<BwrapStatus> {
  const args = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', ...ISOLATION_FLAGS, '--', 'true'];
  return new Promise((resolve) => {
    execFile(bwrapPath, args, { timeout: PROBE_TIMEOUT_MS, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, _stdout, stderr) => {
      if (err === null) return resolve({ usable: true, path: bwrapPath });
      const code = 'code' in err ? err.code : undefined;
      const reason =
        code === 'ENOENT'
          ? `${bwrapPath} was not found`
          : `\`${bwrapPath} ${args.join(' ')}\` failed: ${(stderr.trim() || err.message).split('\n')[0]}`;
      resolve({ usable: false, path: bwrapPath, reason });
    });
  });
}
