/**
 * Secrets in what a change adds, found with secretlint's recommended rules (cloud and SaaS keys
 * and tokens, private key blocks, credentials in URLs, …). Only added lines are scanned, so a
 * secret already in the repository does not block every later change to its file.
 *
 * A finding names where and which rule, never the value: at most its first characters and length
 * (`ghp_…(40 chars)`), so it can go into a job's reason, a push refusal or a log line as it is.
 *
 * - `scanCommits`: what each commit adds over its first parent: every commit a push would send.
 * - `scanDiff`: what one tree adds over another, e.g. a whole change against its base.
 * - `scanAddedText`: the scanner itself, over lines already at hand.
 */
import { z } from 'zod';
import { ADDED_LINES_ARGS, parseAddedLines, type AddedFile } from '../git/added-lines.js';
import { git } from '../git/git.js';

export const SecretFinding = z.object({
  file: z.string().min(1),
  line: z.number().int().positive(),
  /** The secretlint rule and its message id, short: `github/GITHUB_TOKEN`, `privatekey/PrivateKey`. */
  rule: z.string().min(1),
  /** What was found, masked: the value's first characters (long values only) and its length. */
  message: z.string(),
});
export type SecretFinding = z.infer<typeof SecretFinding>;

export type { AddedFile };

const FILTER_COMMENTS = '@secretlint/secretlint-rule-filter-comments';
/** Options of the recommended rules that differ from their defaults. */
const RULE_OPTIONS: Record<string, Record<string, unknown>> = {
  // An access key id is how a hard-coded AWS key is usually spotted: its secret half need not be beside it.
  '@secretlint/secretlint-rule-aws': { enableIDScanRule: true },
};

/** secretlint and its rules, loaded at the first scan: most processes, and every CLI command, never scan. */
let scanner: ReturnType<typeof loadScanner> | undefined;

async function loadScanner() {
  const [{ lintSource }, preset] = await Promise.all([import('@secretlint/core'), import('@secretlint/secretlint-rule-preset-recommend')]);
  // Each rule of the preset on its own, without the one that obeys `secretlint-disable` comments:
  // the change being scanned must not be able to switch its own scan off (a preset cannot drop it).
  const rules = preset.rules
    .filter((rule) => rule.meta.id !== FILTER_COMMENTS)
    .map((rule) => ({ id: rule.meta.id, rule, options: RULE_OPTIONS[rule.meta.id] ?? {} }));
  return { lintSource, rules };
}

/** Values shorter than this get no hint at all, only their length. */
const HINT_MIN_LENGTH = 20;
const HINT_CHARS = 4;

export async function scanAddedText(files: readonly AddedFile[]): Promise<SecretFinding[]> {
  const { lintSource, rules } = await (scanner ??= loadScanner());
  const findings: SecretFinding[] = [];
  for (const file of files) {
    // The added lines of a file, in order, scanned as one text so a multi-line block (a private key) is seen whole.
    const content = file.lines.map((l) => l.text).join('\n');
    const result = await lintSource({
      source: { content, filePath: file.path, contentType: 'text' },
      options: { config: { rules }, maskSecrets: true, noPhysicFilePath: true },
    });
    for (const message of result.messages) {
      const line = file.lines[message.loc.start.line - 1]?.line ?? file.lines[0]?.line ?? 1;
      findings.push({ file: file.path, line, rule: `${shortRuleId(message.ruleId)}/${message.messageId}`, message: maskedHint(content.slice(message.range[0], message.range[1])) });
    }
  }
  return findings.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

/** What `to` adds over `from` (commits or trees, both in `repoDir`). */
export async function scanDiff(repoDir: string, from: string, to: string): Promise<SecretFinding[]> {
  return scanAddedText(parseAddedLines(await git(['diff', ...ADDED_LINES_ARGS, from, to, '--'], { cwd: repoDir })));
}

/**
 * What each commit adds over its first parent (a root commit: everything in it); a finding is
 * reported once. `env`: for git in `repoDir`, e.g. credentials of a promisor remote.
 */
export async function scanCommits(repoDir: string, commits: readonly string[], options: { env?: Record<string, string> } = {}): Promise<SecretFinding[]> {
  const seen = new Map<string, SecretFinding>();
  for (const commit of commits) {
    const args = ['diff-tree', '-p', '--no-commit-id', '--root', '--diff-merges=first-parent', ...ADDED_LINES_ARGS, commit, '--'];
    const diff = await git(args, { cwd: repoDir, ...(options.env === undefined ? {} : { env: options.env }) });
    for (const finding of await scanAddedText(parseAddedLines(diff))) seen.set(describeFinding(finding), finding);
  }
  return [...seen.values()];
}

/** `src/config.ts:12 (github/GITHUB_TOKEN)`: where and what, never the value. */
export function describeFinding(finding: SecretFinding): string {
  return `${finding.file}:${finding.line} (${finding.rule})`;
}

/** Up to `max` findings described, and how many more there are. */
export function describeFindings(findings: readonly SecretFinding[], max = 5): string {
  const shown = findings.slice(0, max).map(describeFinding).join(', ');
  return findings.length > max ? `${shown} and ${findings.length - max} more` : shown;
}

function shortRuleId(ruleId: string): string {
  return ruleId.replace(/^@secretlint\/secretlint-rule-/, '');
}

function maskedHint(value: string): string {
  const head = value.length >= HINT_MIN_LENGTH ? `${value.slice(0, HINT_CHARS)}…` : '';
  return `${head}(${value.length} chars)`;
}
