import type { Command } from 'commander';
import { StagegateError } from '../../core/errors.js';
import { SYSTEM_TOOLS, ensureSystemTools } from '../system-tools.js';

const MIN_NODE = [20, 19] as const;

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check (and with --install, install) what Stagegate needs on this machine: Node, git, nats-server, bwrap')
    .option('--install', 'install missing system packages with apt-get when running as root')
    .option('--json', 'print the findings as JSON')
    .action((options: { install?: boolean; json?: boolean }) => {
      const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
      const nodeOk = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
      const results = ensureSystemTools(SYSTEM_TOOLS, options.install === true);
      if (options.json) {
        const tools = results.map((r) => ({ command: r.tool.command, status: r.status, message: r.message }));
        console.log(JSON.stringify({ node: { version: process.versions.node, ok: nodeOk }, tools }));
      } else {
        console.log(`node ${process.versions.node}: ${nodeOk ? 'ok' : `needs ${MIN_NODE.join('.')} or newer`}`);
        for (const r of results) console.log(`${r.tool.command}: ${r.status === 'missing' ? r.message : r.status}`);
      }
      const missing = results.filter((r) => r.status === 'missing');
      if (!nodeOk || missing.length > 0) {
        const what = [...(nodeOk ? [] : [`node ${MIN_NODE.join('.')}+`]), ...missing.map((r) => r.tool.command)];
        throw new StagegateError('TOOL_MISSING', `missing: ${what.join(', ')}`);
      }
    });
}
