/**
 * Task starts per user and per repository in fixed windows aligned to the epoch (an hour's
 * window is each whole UTC hour), one entry per window in the usage bucket:
 * `triggers.<user|repo>.<who>.<window start ms>` → `{ count }`. A start is taken with
 * compare-and-set, so any number of serve and CLI processes count together, and never past the
 * limit; a start given back (a later limit refused it) is subtracted the same way.
 */
import type { KV } from '@nats-io/kv';
import { z } from 'zod';
import { retryOnConflict, versionedKv } from '../../core/bus/versioned-kv.js';
import { keyToken } from './account.js';

const TriggerCount = z.object({ count: z.number().int().nonnegative() });

export interface TriggerWindow {
  start: number;
  end: number;
}

export function windowOf(at: number, windowMs: number): TriggerWindow {
  const start = Math.floor(at / windowMs) * windowMs;
  return { start, end: start + windowMs };
}

export function triggerKey(kind: 'user' | 'repo', who: string, window: TriggerWindow): string {
  return `triggers.${kind}.${keyToken(who)}.${window.start}`;
}

const counts = (kv: KV) => versionedKv(kv, TriggerCount, (key) => `trigger count ${key}`);

/** One more start under `key` if that stays within `limit`; otherwise the count as it stands. */
export async function takeTrigger(kv: KV, key: string, limit: number): Promise<{ taken: true } | { taken: false; count: number }> {
  return retryOnConflict(async () => {
    const { value, revision } = await counts(kv).load(key);
    const count = value?.count ?? 0;
    if (count >= limit) return { taken: false, count };
    await counts(kv).save(key, { count: count + 1 }, { revision });
    return { taken: true };
  });
}

export async function returnTrigger(kv: KV, key: string): Promise<void> {
  await retryOnConflict(async () => {
    const { value, revision } = await counts(kv).load(key);
    if (value === undefined || value.count === 0) return;
    await counts(kv).save(key, { count: value.count - 1 }, { revision });
  });
}
