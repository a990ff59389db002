/**
 * What a model is shown of a repository: the file list, the README, and the contents of the
 * files that matter for the task, within a size budget. Rendered in a fixed order so the same
 * repository gives the same text (a stable prompt prefix). The instruction files are listed but
 * not shown here: they are shown from the default branch on their own (instructions.ts).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { git } from '../git/git.js';
import { INSTRUCTION_FILES } from './instructions.js';

export interface RepoViewOptions {
  dir: string;
  /** Files to include in full, when they exist. */
  focus: string[];
  /** Words from the task; files whose path mentions one are included too. */
  keywords: string[];
  maxFiles?: number;
  maxBytes?: number;
}

export async function renderRepoView(options: RepoViewOptions): Promise<string> {
  const maxFiles = options.maxFiles ?? 400;
  const maxBytes = options.maxBytes ?? 60_000;
  const files = (await git(['ls-files'], { cwd: options.dir })).split('\n').filter((f) => f.length > 0).sort();
  const words = options.keywords.map((w) => w.toLowerCase()).filter((w) => w.length > 3);
  const wanted = [
    ...options.focus.filter((f) => files.includes(f)),
    ...files.filter((f) => /^readme(\.md)?$/i.test(f) || f === 'package.json'),
    ...files.filter((f) => words.some((w) => f.toLowerCase().includes(w))),
    ...files.filter((f) => /\.(m?[jt]s|py|go|rs|sh|java|rb)$/.test(f)),
  ];
  const parts = [`## Files (${files.length})\n${files.slice(0, maxFiles).join('\n')}${files.length > maxFiles ? '\n…' : ''}`];
  let budget = maxBytes;
  for (const file of [...new Set(wanted)].filter((f) => !INSTRUCTION_FILES.includes(f))) {
    const text = await readFile(join(options.dir, file), 'utf8').catch(() => undefined);
    if (text === undefined || text.includes('\u0000') || text.length > budget) continue;
    budget -= text.length;
    parts.push(`## ${file}\n\`\`\`\n${text}${text.endsWith('\n') ? '' : '\n'}\`\`\``);
  }
  return parts.join('\n\n');
}

export function keywordsOf(...texts: string[]): string[] {
  return [...new Set(texts.join(' ').split(/[^A-Za-z0-9_]+/).filter((w) => w.length > 0))];
}
