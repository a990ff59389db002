/**
 * Durable timers in the timers bucket (`sg-timers`), one key per timer. Writing is idempotent:
 * a timer is created only if its key is absent, so an effect repeated after a crash does not
 * move a timer; clearing a timer that is already gone is harmless.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { DurableTimer } from '../../core/bus/messages.js';
import { parseJsonAt } from '../../core/parse.js';

export async function keepTimer(kv: KV, key: string, timer: DurableTimer): Promise<void> {
  try {
    await kv.create(key, JSON.stringify(timer));
  } catch (err) {
    if (err instanceof Error && /wrong last sequence|key exists/i.test(err.message)) return;
    throw err;
  }
}

export async function dropTimer(kv: KV, key: string): Promise<void> {
  await kv.delete(key);
}

/**
 * Deletes a timer that fired, only if it is still the revision that fired: a timer written
 * again meanwhile stays (and is judged by the statechart when it fires).
 */
export async function dropFiredTimer(kv: KV, key: string, revision: number): Promise<boolean> {
  try {
    await kv.delete(key, { previousSeq: revision });
    return true;
  } catch (err) {
    if (err instanceof Error && /wrong last sequence/i.test(err.message)) return false;
    throw err;
  }
}

export function parseTimerEntry(entry: KvEntry): DurableTimer {
  return parseJsonAt(DurableTimer, entry.string(), `timer ${entry.key}`);
}
