/**
 * What Stagegate writes on a task's pull request, pure: the title and body (`Closes #N`, the plan
 * and the coder's summary) and the reviewer's verdict as a review, with each comment placed on
 * its line when that line is in the pull request's diff and in the review's text otherwise.
 * Hidden markers name the task and the review job, so a process that restarts can find what it
 * already posted. Model and issue text never closes a marker or pings anyone.
 */
import type { Plan, ReviewComment, SecurityReview, Verdict } from '../../core/bus/messages.js';
import { summarizeFindings, worstFirst } from '../../core/security/finding-summary.js';

export function pullRequestMarker(taskId: string): string {
  return `<!-- stagegate:pr ${taskId} -->`;
}

export function reviewMarker(jobId: string): string {
  return `<!-- stagegate:review ${jobId} -->`;
}

export interface PullRequestInput {
  taskId: string;
  title: string;
  issueNumber: number;
  plan: Plan | null;
  summary: string;
  commit: string;
}

export function pullRequestTitle(input: Pick<PullRequestInput, 'title' | 'issueNumber'>): string {
  return oneLine(input.title) || `Issue #${input.issueNumber}`;
}

export function pullRequestBody(input: PullRequestInput): string {
  const out = [`Closes #${input.issueNumber}`, ''];
  if (input.plan !== null) {
    out.push('### Plan', '', quote(input.plan.summary), '');
    for (const step of input.plan.steps) {
      const detail = step.detail.trim() === '' ? '' : ` — ${oneLine(step.detail)}`;
      out.push(`- ${oneLine(step.title)}${detail}`);
    }
    out.push('');
  }
  out.push('### Summary', '', safe(input.summary.trim() === '' ? '(no summary)' : input.summary.trim()), '');
  out.push(`<sub>Opened by Stagegate for task \`${input.taskId}\` at \`${input.commit.slice(0, 10)}\`; its status is on #${input.issueNumber}.</sub>`);
  out.push(pullRequestMarker(input.taskId));
  return out.join('\n');
}

export interface ReviewInput {
  jobId: string;
  verdict: Verdict;
  testsPassed: boolean;
  /** Absent from a reviewer without a security review. */
  security?: SecurityReview | undefined;
  /** Lines a review comment may be placed on, per changed file; a file absent here is not in the diff. */
  diffLines: ReadonlyMap<string, ReadonlySet<number> | 'unknown'>;
}

export interface ReviewText {
  body: string;
  /** Comments on lines of the diff (right side, the new code). */
  comments: Array<{ path: string; line: number; side: 'RIGHT'; body: string }>;
}

export function reviewText(input: ReviewInput, placeOnLines = true): ReviewText {
  const onLines: ReviewText['comments'] = [];
  const inBody: ReviewComment[] = [];
  for (const c of input.verdict.comments) {
    const lines = input.diffLines.get(c.file);
    const placeable = placeOnLines && c.line !== null && lines !== undefined && (lines === 'unknown' || lines.has(c.line));
    if (placeable && c.line !== null) onLines.push({ path: c.file, line: c.line, side: 'RIGHT', body: safe(c.body) });
    else inBody.push(c);
  }
  const { verdict } = input;
  const out = [
    `**Stagegate reviewer: ${verdict.decision === 'approve' ? 'approved' : 'changes requested'}**${verdict.risk === undefined ? '' : ` · risk ${verdict.risk}`} · tests ${input.testsPassed ? 'passed' : 'failed'}`,
    '',
    safe(verdict.summary),
  ];
  if (inBody.length > 0) {
    out.push('', onLines.length > 0 ? 'Comments on lines outside the diff:' : 'Comments:', '');
    for (const c of inBody) out.push(`- \`${c.file.replace(/`/g, "'")}${c.line === null ? '' : `:${c.line}`}\` — ${oneLine(c.body)}`);
  }
  if (input.security !== undefined) out.push('', ...securitySection(input.security));
  out.push('', reviewMarker(input.jobId));
  return { body: out.join('\n'), comments: onLines };
}

const FINDINGS_SHOWN = 10;

function securitySection(security: SecurityReview): string[] {
  const summary = security.summary.trim() === '' ? '' : ` — ${oneLine(security.summary)}`;
  const out = [`**Security review:** ${summarizeFindings(security.findings)}${summary}`];
  if (security.findings.length > 0) out.push('');
  for (const f of worstFirst(security.findings).slice(0, FINDINGS_SHOWN)) {
    const where = `${f.file.replace(/`/g, "'")}${f.line === null ? '' : `:${f.line}`}`;
    const fix = f.suggestedFix.trim() === '' ? '' : ` Fix: ${oneLine(f.suggestedFix)}`;
    out.push(`- **${f.severity}** ${oneLine(f.category)} \`${where}\` — ${oneLine(f.description)}${fix}`);
  }
  if (security.findings.length > FINDINGS_SHOWN) out.push(`- … and ${security.findings.length - FINDINGS_SHOWN} more`);
  return out;
}

/** New-side line numbers a unified diff's hunks cover (with context), as GitHub lets comments go on them. */
export function linesInPatch(patch: string): Set<number> {
  const lines = new Set<number>();
  let next = 0;
  for (const line of patch.split('\n')) {
    const hunk = /^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@/.exec(line);
    if (hunk !== null) {
      next = Number(hunk[1]);
      continue;
    }
    if (next === 0 || line.startsWith('-') || line.startsWith('\\')) continue;
    lines.add(next);
    next++;
  }
  return lines;
}

function safe(text: string): string {
  return text.replace(/<!--|-->/g, '').replace(/@(?=\w)/g, '@\u200b');
}

function oneLine(text: string): string {
  return safe(text.replace(/\s+/g, ' ').trim());
}

function quote(text: string): string {
  return safe(text.trim())
    .split('\n')
    .map((line) => `> ${line}`)
    .join('\n');
}
