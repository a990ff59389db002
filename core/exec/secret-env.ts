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
  for (const name of STAGEGATE_SECRET_ENV) delete copy[name];
  return copy;
}
