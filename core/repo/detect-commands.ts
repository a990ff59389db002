/** Finds the repository's test command when the task does not name one. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

const PackageJson = z.object({ scripts: z.record(z.string(), z.string()).optional() });

export async function detectTestCommand(dir: string): Promise<string | undefined> {
  const pkg = await readFile(join(dir, 'package.json'), 'utf8').catch(() => undefined);
  if (pkg !== undefined) {
    const parsed = PackageJson.safeParse(safeJson(pkg));
    if (parsed.success && parsed.data.scripts?.test !== undefined) return 'npm test';
  }
  const makefile = await readFile(join(dir, 'Makefile'), 'utf8').catch(() => undefined);
  if (makefile !== undefined && /^test\s*:/m.test(makefile)) return 'make test';
  return undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
