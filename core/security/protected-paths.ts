/**
 * Paths whose change no auto-approval rule may pass: CI workflows (they run with the
 * repository's secrets), deploy configuration, and Stagegate's own configuration (it decides
 * who approves what). Shared by the orchestrator, which refuses auto-approval on them, and the
 * reviewer's deterministic checks, which report them as findings.
 */
import picomatch from 'picomatch';

export const ProtectedKind = ['ci-workflow', 'deploy-config', 'stagegate-config'] as const;
export type ProtectedKind = (typeof ProtectedKind)[number];

export const PROTECTED_GLOBS: Record<ProtectedKind, readonly string[]> = {
  'ci-workflow': ['.github/workflows/**'],
  'deploy-config': [
    '**/Dockerfile',
    '**/Dockerfile.!(md|txt)',
    '**/docker-compose*.{yml,yaml}',
    '**/compose.{yml,yaml}',
    'Procfile',
    'fly.toml',
    'vercel.json',
    'netlify.toml',
    'app.yaml',
    'render.yaml',
    'serverless.{yml,yaml}',
    '{deploy,deployment,deployments,k8s,kubernetes,helm,charts,terraform,infra}/**',
    '**/*.tf',
  ],
  'stagegate-config': ['.github/stagegate.{yml,yaml,json}', '**/stagegate.json', '**/stagegate.config.*', '.stagegate/**'],
};

const KIND_WORDS: Record<ProtectedKind, string> = {
  'ci-workflow': 'CI workflow',
  'deploy-config': 'deploy configuration',
  'stagegate-config': "Stagegate's configuration",
};

export interface ProtectedChange {
  file: string;
  kind: ProtectedKind;
}

type PathTest = (path: string) => boolean;

function pathTest(globs: readonly string[]): PathTest {
  const isMatch = picomatch([...globs], { dot: true });
  return (path) => isMatch(path);
}

/** Compiled once: gate guards ask on every step. */
const BUILT_IN = ProtectedKind.map((kind) => ({ kind, test: pathTest(PROTECTED_GLOBS[kind]) }));
const extraTests = new Map<string, PathTest>();

function extraTest(globs: readonly string[]): PathTest | undefined {
  if (globs.length === 0) return undefined;
  const key = JSON.stringify(globs);
  const known = extraTests.get(key) ?? pathTest(globs);
  extraTests.set(key, known);
  return known;
}

/** `extraDeployGlobs`: the repository's own deploy configuration (`gates.security.protectedPaths`). */
export function protectedChangesIn(files: readonly string[], extraDeployGlobs: readonly string[] = []): ProtectedChange[] {
  const extra = extraTest(extraDeployGlobs);
  return files.flatMap((file) => {
    const kind = BUILT_IN.find((m) => m.test(file))?.kind ?? (extra?.(file) === true ? 'deploy-config' : undefined);
    return kind === undefined ? [] : [{ file, kind }];
  });
}

/** `.github/workflows/ci.yml (CI workflow), fly.toml (deploy configuration)`, the first few. */
export function describeProtectedChanges(changes: readonly ProtectedChange[]): string {
  const shown = changes.slice(0, 3).map((c) => `${c.file} (${KIND_WORDS[c.kind]})`);
  return `${shown.join(', ')}${changes.length > 3 ? `, and ${changes.length - 3} more` : ''}`;
}
