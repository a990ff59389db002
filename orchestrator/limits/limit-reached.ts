/**
 * A start refused by a limit, and the words every channel says it with: which limit (its config
 * field), its value, the count or spend now, and when it resets. The GitHub comment, the HTTP
 * API's 429 and the CLI's stderr all carry the same message.
 */
import { StagegateError } from '../../core/errors.js';

interface Counted {
  /** What the limit is counted for: a user (`github:octocat`), a repository (`acme/app`) or an owner (`acme`). */
  subject: string;
  value: number;
  /** Starts in the window, tasks running, or dollars spent today. */
  current: number;
}

export type LimitRefusal =
  | (Counted & {
      limit: 'triggersPerUser' | 'triggersPerRepo';
      /** The trigger window the starts are counted over. */
      windowMs: number;
      /** When the window ends and the count starts over (ISO, UTC). */
      resetsAt: string;
    })
  /** Frees up when one of the `running` tasks ends, not at a time. */
  | (Counted & { limit: 'concurrentTasksPerRepo'; running: string[] })
  /** Resets at the next UTC midnight. */
  | (Counted & { limit: 'dailySpendUsdPerRepo' | 'dailySpendUsdPerOrg'; resetsAt: string });

export type LimitName = LimitRefusal['limit'];

export class LimitReached extends StagegateError {
  override name = 'LimitReached';
  constructor(
    readonly refusal: LimitRefusal,
    taskId?: string,
  ) {
    super('LIMIT_REACHED', describeRefusal(refusal), { ...(taskId === undefined ? {} : { taskId }), details: { ...refusal } });
  }
}

export function describeRefusal(r: LimitRefusal): string {
  const field = `limits.${r.limit}`;
  switch (r.limit) {
    case 'triggersPerUser':
      return `limit reached: ${r.subject} may start ${plural(r.value, 'task')} per ${formatWindow(r.windowMs)} (${field}) and has started ${r.current}; it resets at ${r.resetsAt}`;
    case 'triggersPerRepo':
      return `limit reached: ${r.subject} may have ${plural(r.value, 'task start')} per ${formatWindow(r.windowMs)} (${field}) and has had ${r.current}; it resets at ${r.resetsAt}`;
    case 'concurrentTasksPerRepo':
      return `limit reached: ${r.subject} may have ${plural(r.value, 'task')} running at once (${field}) and has ${r.current} (${r.running.join(', ')}); it resets when one of them is done, failed or cancelled`;
    case 'dailySpendUsdPerRepo':
      return `limit reached: ${r.subject} may spend ${usd(r.value)} on models per UTC day (${field}) and has spent ${usd(r.current)} today; it resets at ${r.resetsAt}`;
    case 'dailySpendUsdPerOrg':
      return `limit reached: the repositories of ${r.subject} may spend ${usd(r.value)} on models per UTC day (${field}) and have spent ${usd(r.current)} today; it resets at ${r.resetsAt}`;
  }
}

/** Seconds until the reset, for an HTTP Retry-After; undefined when it waits on a task instead. */
export function retryAfterSeconds(r: LimitRefusal, now: Date): number | undefined {
  if (r.limit === 'concurrentTasksPerRepo') return undefined;
  return Math.max(1, Math.ceil((Date.parse(r.resetsAt) - now.getTime()) / 1000));
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

function usd(amount: number): string {
  return `$${amount.toFixed(2)}`;
}

const UNITS: Array<[number, string]> = [
  [86_400_000, 'day'],
  [3_600_000, 'hour'],
  [60_000, 'minute'],
  [1_000, 'second'],
];

function formatWindow(ms: number): string {
  const [size, unit] = UNITS.find(([size]) => ms % size === 0) ?? [1, 'millisecond'];
  const n = ms / size;
  return n === 1 ? unit : `${n} ${unit}s`;
}
