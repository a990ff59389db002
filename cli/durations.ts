import { StagegateError } from '../core/errors.js';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `90s`, `30m`, `8h`, `2d` in milliseconds; `what` names the option in the error. */
export function parseDuration(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)([smhd])$/.exec(text.trim());
  if (match === null) throw new StagegateError('CONFIG_INVALID', `${what}: expected a duration like 90s, 30m, 8h or 2d, got '${text}'`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
}

/** An ISO time, or a duration from `now`: the `--until` of a session. */
export function parseUntil(text: string, now: Date): string {
  if (/^\d+(?:\.\d+)?[smhd]$/.test(text.trim())) return new Date(now.getTime() + parseDuration(text, '--until')).toISOString();
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new StagegateError('CONFIG_INVALID', `--until: expected an ISO time (2026-12-01T18:00Z) or a duration (8h), got '${text}'`);
  return new Date(at).toISOString();
}
