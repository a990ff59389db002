/**
 * A repository's Stagegate settings as a trigger reads them, through serve's GitHub client:
 * `.github/stagegate.yml` on the repository's default branch over the organisation's defaults in
 * `<owner>/.github` (merged and checked by core/repo/settings.ts). Always the default branch:
 * never a pull request's or a task's branch, which anyone proposing a change can edit.
 * A missing file (or a missing `<owner>/.github`) is no settings; an unreadable or invalid one is
 * a problem, reported on the issue by the trigger, and no task starts.
 */
import { gitHubStatusOf } from '../../core/github/client.js';
import { readRepoFile, type RepoFile } from '../../core/github/read-file.js';
import type { Logger } from '../../core/log.js';
import {
  MAX_SETTINGS_BYTES,
  ORG_SETTINGS_REPO,
  REPO_SETTINGS_PATH,
  checkSettingsText,
  labelOf,
  resolveTaskSettings,
  type SettingsDefaults,
  type TaskSettings,
} from '../../core/repo/settings.js';
import type { RepositoryClients, RepositoryRef } from './payloads.js';

export interface SettingsProblem {
  /** Where the problem is, in words: `.github/stagegate.yml on main`. */
  file: string;
  problems: string[];
}

export type RepoSettings =
  | { ok: true; settings: TaskSettings; /** The files that applied, lowest first. */ files: string[] }
  | { ok: false; /** The trigger label meant, as far as the files tell. */ label: string; problems: SettingsProblem[] };

export type SettingsLoader = (ref: RepositoryRef, defaultBranch: string) => Promise<RepoSettings>;

export function createSettingsLoader(github: RepositoryClients, defaults: SettingsDefaults, log: Logger): SettingsLoader {
  return async (ref, defaultBranch) => {
    const { owner, repo } = ref;
    const sources: Array<{ file: string; read: () => Promise<RepoFile> }> = [];
    if (repo.toLowerCase() !== ORG_SETTINGS_REPO) {
      sources.push({ file: `${REPO_SETTINGS_PATH} in ${owner}/${ORG_SETTINGS_REPO}`, read: () => readOrgFile(github, owner) });
    }
    sources.push({
      file: `${REPO_SETTINGS_PATH} on ${defaultBranch}`,
      read: async () => readRepoFile(await github.forRepository(ref), { owner, repo, path: REPO_SETTINGS_PATH, ref: defaultBranch }, MAX_SETTINGS_BYTES),
    });

    const values: unknown[] = [];
    const files: string[] = [];
    const problems: SettingsProblem[] = [];
    for (const source of sources) {
      const read = await source.read();
      if (read.kind === 'missing') continue;
      if (read.kind === 'unreadable') {
        problems.push({ file: source.file, problems: [read.reason] });
        continue;
      }
      const checked = checkSettingsText(read.text);
      if (checked.value !== undefined) values.push(checked.value);
      if (checked.ok) files.push(source.file);
      else problems.push({ file: source.file, problems: checked.problems });
    }
    if (problems.length > 0) return { ok: false, label: labelOf(defaults, values), problems };
    const resolved = resolveTaskSettings(defaults, values);
    if (!resolved.ok) return { ok: false, label: labelOf(defaults, values), problems: [{ file: `the settings of ${files.join(' merged with ')}`, problems: resolved.problems }] };
    log.debug({ owner, repo, files }, 'repository settings read');
    return { ok: true, settings: resolved.value, files };
  };
}

/** The organisation's file; no `<owner>/.github` repository (or, as an App, no installation on it) is no file. */
async function readOrgFile(github: RepositoryClients, owner: string): Promise<RepoFile> {
  try {
    const octokit = await github.forRepository({ owner, repo: ORG_SETTINGS_REPO }, { permissions: { contents: 'read' } });
    return await readRepoFile(octokit, { owner, repo: ORG_SETTINGS_REPO, path: REPO_SETTINGS_PATH }, MAX_SETTINGS_BYTES);
  } catch (err) {
    if (gitHubStatusOf(err) === 404) return { kind: 'missing' };
    throw err;
  }
}

/** The issue comment for settings that stop a task from starting: each file, each field, what was expected. */
export function renderSettingsProblems(login: string, where: { owner: string; repo: string }, label: string, problems: readonly SettingsProblem[]): string {
  const sections = problems.map((p) => `\`${p.file}\`:\n${p.problems.map((line) => `- ${line}`).join('\n')}`);
  return [
    `@${login} Stagegate did not start a task: the Stagegate settings of ${where.owner}/${where.repo} are not valid.`,
    ...sections,
    `Fix the file on the default branch, then add the \`${label}\` label again. Nothing changed.`,
  ].join('\n\n');
}
