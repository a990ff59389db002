/**
 * Model spend per repository and owner per UTC day, in the usage bucket: one entry per agent
 * result, `spend.<day>.<org>.<repo>.<result message id>` → the result's usage, its model and
 * what that cost by `model.pricing`. The orchestrator writes it after applying the result; the
 * entry is created only if absent, so a result redelivered, applied again or replayed after a
 * crash, however late, is counted once. The spend caps sum the day's entries of a repository
 * (`spend.<day>.<org>.<repo>.*`) or an owner (`spend.<day>.<org>.>`).
 */
import type { KV } from '@nats-io/kv';
import { z } from 'zod';
import type { ModelPrice } from '../../core/config.js';
import type { Logger } from '../../core/log.js';
import { costUsd } from '../../core/model/cost.js';
import { parseJsonAt } from '../../core/parse.js';
import { SpendFact } from '../../core/task-record.js';
import { keyToken, orgToken, type Account } from './account.js';

export const SpendEntry = SpendFact.extend({
  usd: z.number().nonnegative(),
  /** False when `model.pricing` had no price for the model (or the result named none): counted as $0. */
  priced: z.boolean(),
});
export type SpendEntry = z.infer<typeof SpendEntry>;

export interface SpendLedger {
  /** Counts one result's usage, once per `resultMsgId`. */
  record(fact: SpendFact, resultMsgId: string): Promise<void>;
}

export function createSpendLedger(kv: KV, pricing: Readonly<Record<string, ModelPrice>>, log: Logger): SpendLedger {
  return {
    async record(fact, resultMsgId) {
      const price = fact.model === undefined ? undefined : pricing[fact.model];
      const entry: SpendEntry = { ...fact, usd: price === undefined ? 0 : costUsd(fact.usage, price), priced: price !== undefined };
      const key = `${dayPrefix(fact.day, { repo: fact.repo, org: fact.org })}.${keyToken(resultMsgId)}`;
      try {
        await kv.create(key, JSON.stringify(entry));
      } catch (err) {
        if (err instanceof Error && /wrong last sequence|key exists/i.test(err.message)) return;
        throw err;
      }
      const line = { taskId: fact.taskId, msgId: resultMsgId, repo: fact.repo, day: fact.day, model: fact.model, usd: entry.usd };
      // Without any pricing no cap can be in use (config requires it): unpriced spend is expected then.
      if (entry.priced || Object.keys(pricing).length === 0) log.debug(line, 'model spend counted');
      else log.warn(line, 'model spend counted as $0: model.pricing has no price for this model');
    },
  };
}

/** Dollars a repository, or all the repositories of its owner, spent on `day`. */
export async function spentOn(kv: KV, day: string, account: Account, scope: 'repo' | 'org'): Promise<number> {
  const filter = scope === 'repo' ? `${dayPrefix(day, account)}.*` : `spend.${day}.${orgToken(account)}.>`;
  const entries = new Map<string, number>();
  for await (const e of await kv.history({ key: filter })) {
    if (e.operation !== 'PUT') continue;
    entries.set(e.key, parseJsonAt(SpendEntry, e.string(), `spend entry ${e.key}`).usd);
  }
  // Rounded to a billionth of a dollar, so a sum of prices never falls a rounding error short of a cap.
  return Math.round([...entries.values()].reduce((sum, usd) => sum + usd, 0) * 1e9) / 1e9;
}

/** `day` as the spend keys name it: the UTC date of `at`. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

function dayPrefix(day: string, account: Account): string {
  return `spend.${day}.${orgToken(account)}.${keyToken(account.repo)}`;
}
