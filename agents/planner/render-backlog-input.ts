import type { BacklogRequest } from '../../core/bus/messages.js';
import { untrustedBlock } from '../../core/model/untrusted.js';

/**
 * The repository's instructions, its view and the goal first (stable for a session), the backlog
 * and what happened last: revisions change only the end.
 */
export function renderBacklogInput(job: BacklogRequest, repo: { instructions: string; view: string }): string {
  const parts = [
    ...(repo.instructions === '' ? [] : [repo.instructions]),
    `# Repository (base branch ${job.base})\n\n${repo.view}`,
    `# Goal\n\n${untrustedBlock('SESSION GOAL', job.goal)}`,
  ];
  if (job.current.length > 0) {
    const items = job.current.map((item) => {
      const deps = item.dependsOn.length === 0 ? 'none' : item.dependsOn.join(', ');
      const outcome = item.outcome === undefined ? '' : `\n${untrustedBlock(`OUTCOME OF ${item.id}`, item.outcome)}`;
      return `## ${item.id} (${item.status}, ${item.attempts} attempt(s); depends on: ${deps})\n${item.title}\n\n${untrustedBlock(`BODY OF ${item.id}`, item.body || '(none)')}${outcome}`;
    });
    parts.push(`# Current backlog (revision ${job.revision - 1})\n\n${items.join('\n\n')}`);
  }
  if (job.reason !== undefined) parts.push(`# Why it is being revised\n\n${untrustedBlock('REVISION REASON', job.reason)}`);
  return parts.join('\n\n');
}
