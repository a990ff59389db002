/**
 * The security half of a review: the deterministic checks on the change, then one structured
 * model call with the security brief. Its findings ride on the review result; the orchestrator
 * decides what they hold back.
 */
import type { ReviewRequest, SecurityReview, Usage } from '../../core/bus/messages.js';
import { StagegateError, isStagegateError } from '../../core/errors.js';
import type { Workspace } from '../../core/git/workspace.js';
import type { ModelClient } from '../../core/model/client.js';
import { loadPrompt } from '../../core/model/load-prompt.js';
import { runChangeChecks } from '../../core/security/change-checks.js';
import { readChange } from '../../core/security/read-change.js';
import { addUsage, emptyUsage } from '../../core/task-record.js';
import { SecurityReply } from './output.js';
import { renderSecurityInput } from './render-input.js';

const SECURITY_PROMPT = loadPrompt(import.meta.url, 'security-prompt.md');

export interface SecurityReviewInput {
  model: ModelClient;
  ws: Workspace;
  job: ReviewRequest;
  /** The diff the model is shown (cut to size). */
  diff: string;
  changedFiles: string[];
  /** Spent on the review so far: a failed security call reports it with its own. */
  spent: Usage;
}

export async function reviewSecurity(input: SecurityReviewInput): Promise<{ review: SecurityReview; usage: Usage }> {
  const { model, job } = input;
  const change = await readChange((args) => input.ws.git(args), { base: `origin/${job.task.base}`, commit: job.commit }, input.changedFiles);
  const checked = await runChangeChecks(change);
  const reply = await model
    .generateStructured({
      taskId: job.taskId,
      role: 'reviewer',
      instructions: SECURITY_PROMPT,
      input: renderSecurityInput(job, input.diff),
      schema: SecurityReply,
      schemaName: 'security_review',
    })
    .catch((err: unknown) => {
      throw withSpent(err, input.spent, job.taskId);
    });
  const findings = [...reply.value.findings.map((f) => ({ ...f, source: 'model' as const })), ...checked];
  return { review: { summary: reply.value.summary, findings }, usage: addUsage(input.spent, reply.usage) };
}

/** Says which call failed, and counts what the verdict call spent with what this one did. */
function withSpent(err: unknown, spent: Usage, taskId: string): unknown {
  if (!isStagegateError(err)) return err;
  const usage = addUsage(spent, (err.details?.usage as Usage | undefined) ?? emptyUsage());
  return new StagegateError(err.code, `security review: ${err.message}`, { cause: err, taskId, details: { ...err.details, usage } });
}
