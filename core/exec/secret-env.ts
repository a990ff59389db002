/**
 * The environment variables in which Stagegate keeps its own credentials. A repository's own
 * commands (a deploy script on a model-written tree) may need the operator's variables, but
 * never these: they are removed before such a command starts.
 */
export const STAGEGATE_SECRET_ENV = [
  'OPENAI_API_KEY',
  'GITHUB_TOKEN',
  'GITHUB_APP_PRIVATE_KEY',
  'GITHUB_WEBHOOK_SECRET',
  'SLACK_BOT_TOKEN',
  'SLACK_SIGNING_SECRET',
  'SLACK_APP_TOKEN',
  'STAGEGATE_API_TOKENS',
] as const;

export function withoutStagegateSecrets(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  dropSecretEnv(copy, []);
  return copy;
}

/** The credentials each agent role uses; a worker drops every other one when it starts. */
export const SECRET_ENV_BY_ROLE = {
  planner: ['OPENAI_API_KEY'],
  coder: ['OPENAI_API_KEY'],
  reviewer: ['OPENAI_API_KEY'],
  // The deployer's GitHub strategies merge, dispatch and deploy; it runs no model-written code.
  deployer: ['GITHUB_TOKEN', 'GITHUB_APP_PRIVATE_KEY'],
} as const satisfies Record<'planner' | 'coder' | 'reviewer' | 'deployer', ReadonlyArray<(typeof STAGEGATE_SECRET_ENV)[number]>>;

/** Removes, in place, every Stagegate credential `keep` does not name. */
export function dropSecretEnv(env: NodeJS.ProcessEnv, keep: readonly string[]): void {
  for (const name of STAGEGATE_SECRET_ENV) if (!keep.includes(name)) delete env[name];
}
