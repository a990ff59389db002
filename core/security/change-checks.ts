/**
 * The deterministic half of the security review: checks that read the change itself (paths,
 * added and removed lines, manifests before and after) and report findings no model opinion
 * can talk away. Each check is one entry of CHANGE_CHECKS.
 */
import picomatch from 'picomatch';
import type { SecurityFinding } from '../bus/messages.js';
import type { FileDiff } from '../git/diff-lines.js';
import { protectedChangesIn, type ProtectedKind } from './protected-paths.js';
import { scanAddedText } from './secret-scan.js';

export interface ChangeUnderReview {
  /** Every path the change touches (`git diff --numstat`), binary files included. */
  changedFiles: readonly string[];
  /** Added and removed lines of the text files. */
  diff: readonly FileDiff[];
  /** A file's content before (`base`) or after (`head`) the change; undefined where it does not exist. */
  read(side: 'base' | 'head', path: string): Promise<string | undefined>;
}

export interface ChangeCheck {
  name: string;
  run(change: ChangeUnderReview): Promise<SecurityFinding[]>;
}

type Finding = Omit<SecurityFinding, 'source'>;
const found = (findings: Finding[]): SecurityFinding[] => findings.map((f) => ({ ...f, source: 'check' }));

/** A protected path changed: reported, so a person sees it; the gates never auto-approve it. */
function protectedPathCheck(kind: ProtectedKind, severity: SecurityFinding['severity'], description: string, suggestedFix: string): ChangeCheck {
  return {
    name: kind,
    run: async (change) =>
      found(
        protectedChangesIn(change.changedFiles)
          .filter((c) => c.kind === kind)
          .map((c) => ({ severity, category: kind, file: c.file, line: null, description, suggestedFix })),
      ),
  };
}

/** A path test (picomatch's own takes a second argument, so it is never handed to `filter` as is). */
function pathTest(globs: string | string[]): (path: string) => boolean {
  const isMatch = picomatch(globs, { dot: true });
  return (path) => isMatch(path);
}

const isWorkflow = pathTest('.github/workflows/**');
const isPermissionFile = pathTest(['CODEOWNERS', '{.github,docs}/CODEOWNERS', '.github/settings.{yml,yaml}', '.github/branch-protection*', '.github/rulesets/**']);

/** A workflow's token scopes, or a trigger that runs with secrets on code from forks. */
const PERMISSION_LINE = /^\s*(permissions\s*:|(actions|attestations|checks|contents|deployments|discussions|id-token|issues|models|packages|pages|pull-requests|repository-projects|security-events|statuses)\s*:\s*(read|write|none)\b)|\bpull_request_target\b/;

/** Changes to who may do what: workflow token permissions, code owners, branch protection. */
const permissionsCheck: ChangeCheck = {
  name: 'permissions',
  run: async (change) => {
    const findings: Finding[] = change.changedFiles.filter(isPermissionFile).map((file) => ({
      severity: 'high',
      category: 'permissions',
      file,
      line: null,
      description: 'Changes who must review or may merge (code owners, branch protection or repository settings).',
      suggestedFix: 'Leave repository permissions to its administrators: revert this file unless the task is to change it.',
    }));
    for (const file of change.diff.filter((f) => isWorkflow(f.path))) {
      const lines = [...file.added.map((l) => ({ ...l, how: 'grants' })), ...file.removed.map((l) => ({ ...l, how: 'removes' }))];
      const first = lines.find((l) => PERMISSION_LINE.test(l.text));
      if (first === undefined) continue;
      findings.push({
        severity: 'high',
        category: 'permissions',
        file: file.path,
        line: first.how === 'grants' ? first.line : null,
        description: `Changes a workflow's token permissions or triggers: \`${first.text.trim()}\`.`,
        suggestedFix: 'Keep workflow permissions as they were (least privilege, no pull_request_target on untrusted code).',
      });
    }
    return found(findings);
  },
};

const isManifest = pathTest([
  '**/package-lock.json', '**/npm-shrinkwrap.json', '**/yarn.lock', '**/pnpm-lock.yaml', '**/bun.lockb',
  '**/requirements*.txt', '**/Pipfile', '**/Pipfile.lock', '**/poetry.lock', '**/pyproject.toml', '**/uv.lock',
  '**/go.mod', '**/go.sum', '**/Cargo.toml', '**/Cargo.lock', '**/Gemfile', '**/Gemfile.lock',
  '**/composer.json', '**/composer.lock', '**/pom.xml', '**/build.gradle', '**/build.gradle.kts', '**/gradle.lockfile',
]);
const isPackageJson = pathTest('**/package.json');
const DEPENDENCY_FIELDS = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies', 'bundleDependencies', 'bundledDependencies', 'overrides', 'resolutions'];

const dependencyFinding = (file: string, what: string): Finding => ({
  severity: 'medium',
  category: 'dependencies',
  file,
  line: null,
  description: `${what}: new or changed third-party code runs in builds and production.`,
  suggestedFix: 'Check each added or upgraded package (maintainer, version, install scripts) and keep the lockfile in step.',
});

/** Dependency manifests and lockfiles; a package.json only when its dependencies changed, not its scripts or version. */
const dependencyCheck: ChangeCheck = {
  name: 'dependencies',
  run: async (change) => {
    const findings: Finding[] = change.changedFiles.filter(isManifest).map((file) => dependencyFinding(file, 'Changes a dependency manifest or lockfile'));
    for (const file of change.changedFiles.filter(isPackageJson)) {
      const changed = await changedDependencyFields(change, file);
      if (changed.length > 0) findings.push(dependencyFinding(file, `Changes ${changed.join(', ')}`));
    }
    return found(findings);
  },
};

async function changedDependencyFields(change: ChangeUnderReview, file: string): Promise<string[]> {
  const [before, after] = await Promise.all([change.read('base', file), change.read('head', file)]);
  const fields = (text: string | undefined): Record<string, unknown> | undefined => {
    if (text === undefined) return {};
    try {
      const value: unknown = JSON.parse(text);
      return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  const [a, b] = [fields(before), fields(after)];
  // A manifest that does not parse could declare anything.
  if (a === undefined || b === undefined) return ['package.json (unreadable)'];
  return DEPENDENCY_FIELDS.filter((field) => JSON.stringify(a[field] ?? null) !== JSON.stringify(b[field] ?? null));
}

/**
 * Secrets the change adds. Pushes are scanned already (coder and gateway); this one also sees
 * commits that reached the branch another way, and puts the finding in front of the gate.
 */
const secretsCheck: ChangeCheck = {
  name: 'secrets',
  run: async (change) =>
    found(
      (await scanAddedText(change.diff.map((file) => ({ path: file.path, lines: file.added })))).map((secret) => ({
        severity: 'critical',
        category: 'secrets',
        file: secret.file,
        line: secret.line,
        description: `Adds a secret (${secret.rule}: ${secret.message}).`,
        suggestedFix: 'Remove the value from the change, read it from the environment or a secret store instead, and rotate it: it has been pushed.',
      })),
    ),
};

export const CHANGE_CHECKS: readonly ChangeCheck[] = [
  secretsCheck,
  protectedPathCheck(
    'ci-workflow',
    'medium',
    'Changes a CI workflow, which runs with the repository’s secrets and tokens.',
    'Revert the workflow change unless the task asks for it; a person must approve it either way.',
  ),
  permissionsCheck,
  dependencyCheck,
  protectedPathCheck('deploy-config', 'medium', 'Changes deploy configuration.', 'Revert it unless the task asks for it; a person must approve it either way.'),
  protectedPathCheck(
    'stagegate-config',
    'high',
    'Changes Stagegate’s own configuration (who approves what).',
    'Leave Stagegate’s configuration to its administrators: revert this file.',
  ),
];

/** Every check's findings, in the order of the list. */
export async function runChangeChecks(change: ChangeUnderReview, checks: readonly ChangeCheck[] = CHANGE_CHECKS): Promise<SecurityFinding[]> {
  const results = await Promise.all(checks.map((check) => check.run(change)));
  return results.flat();
}
