/** Bolt's logger interface over the process's pino logger, so Bolt's lines are JSON like the rest. */
import { LogLevel, type Logger as BoltLogger } from '@slack/bolt';
import type { Logger } from '../../../core/log.js';

export function boltLogger(log: Logger): BoltLogger {
  let level = LogLevel.INFO;
  const detail = (parts: unknown[]) =>
    parts.map((p) => (p instanceof Error ? p.message : typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
  return {
    debug: (...parts) => log.debug({ detail: detail(parts) }, 'slack library'),
    info: (...parts) => log.info({ detail: detail(parts) }, 'slack library'),
    warn: (...parts) => log.warn({ detail: detail(parts) }, 'slack library'),
    error: (...parts) => log.error({ detail: detail(parts) }, 'slack library'),
    // pino's level rules; Bolt only asks to keep its own.
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}
