import type { z } from 'zod';

/** Renders zod issues as `'path.to[0].field' expected …` lines, the form every boundary error uses. */
export function describeZodIssues(error: z.ZodError): string {
  return zodIssueLines(error).join('; ');
}

/** One `'path' message` line per issue; `prefix` is put before every path (a part checked on its own). */
export function zodIssueLines(error: z.ZodError, prefix: PropertyKey[] = []): string[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...issue.path];
    return `'${path.length === 0 ? '(root)' : formatPath(path)}' ${issue.message}`;
  });
}

function formatPath(path: PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`))
    .join('');
}
