/**
 * One line per tool call for the task's progress log: `shell npm test → exit 1`,
 * `apply_patch src/textkit.js → applied`, `read_file src/a.js → error: … does not exist`.
 * Reads the call's arguments leniently: a line must never fail over what the model wrote.
 */
import { z } from 'zod';
import type { FunctionCall } from '../../../core/model/conversation.js';
import type { ToolOutcome } from './tool-types.js';

const ArgumentObject = z.record(z.string(), z.unknown());

export function describeToolCall(call: FunctionCall, outcome: ToolOutcome): string {
  return `${call.name}${argumentHint(call)} → ${resultHint(call, outcome)}`;
}

function argumentHint(call: FunctionCall): string {
  let args: unknown;
  try {
    args = JSON.parse(call.arguments);
  } catch {
    return ' (arguments not JSON)';
  }
  const parsed = ArgumentObject.safeParse(args);
  if (!parsed.success) return '';
  const field = (name: string): unknown => parsed.data[name];
  switch (call.name) {
    case 'shell': {
      const command = field('command');
      return ` ${clip(Array.isArray(command) ? command.map(String).join(' ') : String(command ?? ''), 80)}`;
    }
    case 'read_file':
      return ` ${String(field('path') ?? '')}`;
    case 'list_files':
      return ` ${String(field('glob') ?? '*')}`;
    case 'search':
      return ` /${clip(String(field('pattern') ?? ''), 60)}/`;
    case 'apply_patch': {
      const patch = String(field('patch') ?? '');
      const files = [...patch.matchAll(/^\*\*\* (?:Add|Update|Delete) File: (.+)$/gm)].map((m) => m[1]?.trim() ?? '');
      return files.length === 0 ? '' : ` ${clip(files.join(', '), 80)}`;
    }
    case 'update_plan': {
      const steps = field('steps');
      if (!Array.isArray(steps)) return '';
      const done = steps.filter((s: unknown) => typeof s === 'object' && s !== null && 'status' in s && s.status === 'completed').length;
      return ` (${done}/${steps.length} done)`;
    }
    default:
      return '';
  }
}

function resultHint(call: FunctionCall, outcome: ToolOutcome): string {
  if (outcome.control?.kind === 'needs-approval') return `needs approval (${outcome.control.pattern})`;
  const first = outcome.output.split('\n', 1)[0] ?? '';
  if (outcome.isError) return clip(first, 100);
  if (call.name === 'shell') {
    const exit = /^exit code (\S+)/.exec(first);
    return exit === null ? clip(first, 60) : `exit ${exit[1]}`;
  }
  if (call.name === 'apply_patch') return 'applied';
  return 'ok';
}

function clip(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}
