import type { z } from 'zod';

/** Renders zod issues as `'path.to[0].field' expected …` lines, the form every boundary error uses. */
export function describeZodIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length === 0 ? '(root)' : formatPath(issue.path);
      return `'${path}' ${issue.message}`;
    })
    .join('; ');
}

function formatPath(path: PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`))
    .join('');
}
