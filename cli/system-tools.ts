/**
 * The programs Stagegate runs besides Node: git (every agent), nats-server (the demo and the
 * tests start their own), bwrap (the sandbox for model-written commands). Missing ones are
 * installed through the system's package manager where that is possible, else named with how.
 */
import { spawnSync } from 'node:child_process';

export interface SystemTool {
  command: string;
  debianPackage: string;
  why: string;
  howToGet: string;
}

export const SYSTEM_TOOLS: readonly SystemTool[] = [
  { command: 'git', debianPackage: 'git', why: 'agents clone, commit and push', howToGet: 'https://git-scm.com/downloads' },
  {
    command: 'nats-server',
    debianPackage: 'nats-server',
    why: 'the demo and the tests start a NATS server with JetStream of their own',
    howToGet: 'https://docs.nats.io/running-a-nats-service/introduction/installation',
  },
  {
    command: 'bwrap',
    debianPackage: 'bubblewrap',
    why: 'model-written commands run in a bubblewrap sandbox',
    howToGet: 'your distribution\'s "bubblewrap" package',
  },
];

export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

export type InstallResult = { tool: SystemTool; status: 'present' | 'installed' | 'missing'; message?: string };

/** Installs missing tools with apt-get when running as root on a Debian-like system. */
export function ensureSystemTools(tools: readonly SystemTool[], install: boolean): InstallResult[] {
  const missing = tools.filter((t) => !hasCommand(t.command));
  const results: InstallResult[] = tools.filter((t) => !missing.includes(t)).map((tool) => ({ tool, status: 'present' }));
  if (missing.length === 0) return results;

  const canApt = install && process.getuid?.() === 0 && hasCommand('apt-get');
  if (canApt) {
    const packages = missing.map((t) => t.debianPackage);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    spawnSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env });
  }
  for (const tool of missing) {
    if (hasCommand(tool.command)) {
      results.push({ tool, status: 'installed' });
      continue;
    }
    const how = `install the Debian/Ubuntu package '${tool.debianPackage}' (sudo apt-get install ${tool.debianPackage}) or see ${tool.howToGet}`;
    results.push({ tool, status: 'missing', message: `${tool.command} not found (${tool.why}): ${how}` });
  }
  return results;
}
