import { readFileSync } from 'node:fs';

/** Reads an agent's prompt.md, versioned beside its code; read once at start-up. */
export function loadPrompt(moduleUrl: string, file = 'prompt.md'): string {
  return readFileSync(new URL(file, moduleUrl), 'utf8');
}
