/**
 * A repository's own Stagegate settings: `.github/stagegate.yml` on its default branch, over the
 * organisation's defaults (the same path in the `<owner>/.github` repository), over the
 * configuration serve runs with. Every file is checked on its own (so a problem names the file
 * it is in), then the layers are merged (objects key by key, lists and values replaced) and
 * checked again. Files are merged as written, never as parsed, so a field one leaves out comes
 * from the layer below rather than from a schema default.
 *
 * What a repository can change: the trigger label, the gate policies, its commands (test, lint,
 * build), the hosts its sandboxed commands may reach (`sandbox.egress`), how a branch is brought
 * up to date with its base (`update.strategy`), its CI policy (`ci`, where serve watches CI) and
 * its limits. Limits (and CI-fix attempts) only ever lower the configured ones: a repository
 * file, written by anyone who can push to the default branch, cannot buy a task more turns or money.
 */
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { CiPolicy, CoderCaps, UpdateStrategy, type TaskSpec } from '../bus/messages.js';
import { EgressRules } from '../sandbox/egress-rules.js';
import { GatePolicies, GatePolicy } from '../policy.js';
import { zodIssueLines } from '../zod-issues.js';

export const REPO_SETTINGS_PATH = '.github/stagegate.yml';
/** The repository whose `.github/stagegate.yml` holds an organisation's defaults (Probot apps use the same place). */
export const ORG_SETTINGS_REPO = '.github';
/** Larger files are refused: settings are a few lines. */
export const MAX_SETTINGS_BYTES = 64 * 1024;

/** GitHub's label names are at most 50 characters; `stagegate:<state>` labels are Stagegate's own. */
export const TriggerLabel = z
  .string()
  .trim()
  .min(1, 'expected a label name')
  .max(50, 'expected a label name of at most 50 characters')
  .refine((label) => !label.toLowerCase().startsWith('stagegate:'), "expected a label that does not start with 'stagegate:' (Stagegate shows a task's state with those)");

const Count = z.number().int('expected a whole number').nonnegative('expected 0 or more');
const Command = z.string().trim().min(1, 'expected a command line').max(1000, 'expected a command line of at most 1000 characters');
const GatePolicyPart = GatePolicy.partial().strict();

/** One file as written: every field optional, unknown fields refused (a misspelt key is an error, not a silent default). */
export const RepoSettingsFile = z
  .strictObject({
    label: TriggerLabel,
    gates: z.strictObject({ plan: GatePolicyPart, review: GatePolicyPart, deploy: GatePolicyPart, command: GatePolicyPart }).partial(),
    commands: z.strictObject({ test: Command, lint: Command, build: Command }).partial(),
    sandbox: z.strictObject({ egress: EgressRules }).partial(),
    update: z.strictObject({ strategy: UpdateStrategy }).partial(),
    ci: z.strictObject({ maxFixAttempts: Count, onRedBase: CiPolicy.shape.onRedBase.unwrap() }).partial(),
    limits: z
      .strictObject({
        maxReviewRounds: Count,
        maxReviewerRounds: Count,
        coder: CoderCaps.strict(),
      })
      .partial(),
  })
  .partial();
export type RepoSettingsFile = z.infer<typeof RepoSettingsFile>;

/** What serve runs with when no file says otherwise. */
export interface SettingsDefaults {
  label: string;
  gates: GatePolicies;
  maxReviewRounds: number;
  maxReviewerRounds: number;
  /** Absent: serve does not watch CI, and no file can make it. */
  ci?: CiPolicy | undefined;
}

/** What a task from the repository is submitted with. */
export interface TaskSettings {
  label: string;
  policies: GatePolicies;
  maxReviewRounds: number;
  maxReviewerRounds: number;
  ci?: CiPolicy;
  spec: Pick<TaskSpec, 'testCommand' | 'lintCommand' | 'buildCommand' | 'coderCaps' | 'egress' | 'updateStrategy'>;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: string[] };

/**
 * YAML text → the file's value as written, or what is wrong with it (line and column for YAML,
 * the field for the schema). On failure `value` is what could be read (YAML recovers what it
 * can around a syntax error), for `labelOf` alone.
 */
export function checkSettingsText(text: string): Checked<unknown> & { value?: unknown } {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    return { ok: false, problems: [...doc.errors.map((e) => firstLine(e.message)), firstLine(err instanceof Error ? err.message : String(err))] };
  }
  if (doc.errors.length > 0) return { ok: false, problems: doc.errors.map((e) => firstLine(e.message)), value };
  const parsed = RepoSettingsFile.safeParse(value);
  return parsed.success ? { ok: true, value } : { ok: false, problems: zodIssueLines(parsed.error), value };
}

/** The layers (lowest first, each already checked) over the defaults. */
export function resolveTaskSettings(defaults: SettingsDefaults, layers: readonly unknown[]): Checked<TaskSettings> {
  const merged = layers.reduce<unknown>((below, above) => deepMerge(below, above), {});
  const file = RepoSettingsFile.safeParse(merged);
  if (!file.success) return { ok: false, problems: zodIssueLines(file.error) };
  const gates = isRecord(merged) ? merged.gates : undefined;
  const policies = GatePolicies.safeParse(deepMerge(defaults.gates, gates));
  if (!policies.success) return { ok: false, problems: zodIssueLines(policies.error, ['gates']) };
  const { label, commands = {}, limits = {}, sandbox = {}, update = {}, ci = {} } = file.data;
  const lower = (configured: number, asked: number | undefined) => Math.min(configured, asked ?? configured);
  return {
    ok: true,
    value: {
      label: label ?? defaults.label,
      policies: policies.data,
      maxReviewRounds: lower(defaults.maxReviewRounds, limits.maxReviewRounds),
      maxReviewerRounds: lower(defaults.maxReviewerRounds, limits.maxReviewerRounds),
      ...(defaults.ci === undefined
        ? {}
        : { ci: { maxFixAttempts: lower(defaults.ci.maxFixAttempts, ci.maxFixAttempts), onRedBase: ci.onRedBase ?? defaults.ci.onRedBase } }),
      spec: {
        ...(commands.test === undefined ? {} : { testCommand: commands.test }),
        ...(commands.lint === undefined ? {} : { lintCommand: commands.lint }),
        ...(commands.build === undefined ? {} : { buildCommand: commands.build }),
        ...(limits.coder === undefined || Object.keys(limits.coder).length === 0 ? {} : { coderCaps: limits.coder }),
        ...(sandbox.egress === undefined || sandbox.egress.length === 0 ? {} : { egress: sandbox.egress }),
        ...(update.strategy === undefined ? {} : { updateStrategy: update.strategy }),
      },
    },
  };
}

/**
 * The trigger label even when a file is invalid (the topmost layer with a valid `label`), so a
 * broken file is reported only on issues given the label that was meant, not on every label.
 */
export function labelOf(defaults: Pick<SettingsDefaults, 'label'>, layers: readonly unknown[]): string {
  for (const layer of [...layers].reverse()) {
    const label = isRecord(layer) ? TriggerLabel.safeParse(layer.label) : undefined;
    if (label?.success === true) return label.data;
  }
  return defaults.label;
}

/** Objects merge key by key; anything else above replaces what is below. */
function deepMerge(below: unknown, above: unknown): unknown {
  if (above === undefined) return below;
  if (!isRecord(below) || !isRecord(above)) return above;
  const merged: Record<string, unknown> = { ...below };
  for (const [key, value] of Object.entries(above)) {
    if (key !== '__proto__') merged[key] = deepMerge(below[key], value);
  }
  return merged;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/:$/, '');
}
