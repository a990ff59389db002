/**
 * The values of a process's configured secrets, kept off what it sends out: model requests,
 * GitHub comments and pull requests, Slack messages, and what it publishes on the bus (the task
 * log, which `stagegate logs` and every channel read). Each of those boundaries calls the one
 * redactor made here from `secretValuesOf(config)`; text that holds a value gets `[redacted]` in
 * its place. Log lines are covered apart from this, by pino's redaction of secret fields.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';

export const REDACTED = '[redacted]';

/** Shorter values are not looked for: they would mangle ordinary words, and guessing them is easy anyway. */
const MIN_SECRET_LENGTH = 8;

/** Returns `value` with every configured secret in its strings replaced; objects and arrays are copied, not changed. */
export type RedactSecrets = <T>(value: T) => T;

type SecretConfig = Pick<Config, 'model' | 'github' | 'slack' | 'api'>;

/**
 * Every credential in a configuration. The GitHub App key counts line by line (PEM text, or the
 * file it names), so a key that leaks in pieces or with other line endings is still caught.
 */
export function secretValuesOf(config: Partial<SecretConfig>): string[] {
  const { model, github, slack, api } = config;
  return [
    model?.apiKey,
    github?.token,
    github?.webhookSecret,
    ...(github?.privateKey === undefined ? [] : privateKeyLines(github.privateKey)),
    slack?.botToken,
    slack?.signingSecret,
    slack?.appToken,
    ...(api?.tokens ?? []).map((t) => t.token),
  ].filter((v): v is string => v !== undefined);
}

export function createSecretRedactor(values: readonly string[]): RedactSecrets {
  // Longest first, so a secret that contains another is replaced whole.
  const secrets = [...new Set(values.filter((v) => v.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  const redactText = (text: string): string => secrets.reduce((out, secret) => (out.includes(secret) ? out.replaceAll(secret, REDACTED) : out), text);
  const redact = (value: unknown): unknown => {
    if (typeof value === 'string') return redactText(value);
    if (Array.isArray(value)) return value.map(redact);
    if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v)]));
    return value;
  };
  return <T>(value: T): T => (secrets.length === 0 ? value : (redact(value) as T));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function privateKeyLines(value: string): string[] {
  let pem = value.trim();
  if (!pem.startsWith('-----BEGIN')) {
    try {
      pem = readFileSync(pem, 'utf8');
    } catch {
      // Not readable here: the GitHub client reports that when it starts; this process cannot leak what it cannot read.
      return [];
    }
  }
  return pem
    .split(/\r?\n|\\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('-----'));
}
