/**
 * The abuse and cost limits, checked before a task starts (a submission, or a retry of a failed
 * task), whichever channel asked: starts per user and per repository in the trigger window,
 * tasks running per repository, and the day's model spend per repository and per owner. The
 * checks that count (starts, running places) take their place with compare-and-set in NATS, so
 * every serve and CLI process counts together; when a later check refuses, the places already
 * taken are given back, so a refused start counts against nothing. The first limit reached
 * refuses with `LimitReached`. With no limit configured nothing is read or written.
 */
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { TaskSpec } from '../../core/bus/messages.js';
import { openLimitsBucket, openUsageBucket } from '../../core/bus/topology.js';
import type { LimitsConfig } from '../../core/config.js';
import { accountOf, type Account } from './account.js';
import { LimitReached } from './limit-reached.js';
import { returnRunningSlot, takeRunningSlot } from './running-tasks.js';
import { spentOn, utcDay } from './spend-ledger.js';
import { returnTrigger, takeTrigger, triggerKey, windowOf } from './trigger-counts.js';

export interface StartRequest {
  taskId: string;
  /** Who starts it: the submitter, or whoever asked for the retry. */
  user: string;
  spec: TaskSpec;
}

export interface Admission {
  /** Gives back what the start took, when it did not happen after all (its publish failed). */
  release(): Promise<void>;
}

export interface LimitGate {
  /** Takes the start's place under every limit, or throws `LimitReached` naming the first one reached. */
  admit(request: StartRequest): Promise<Admission>;
}

const NOTHING_TAKEN: Admission = { release: async () => {} };

/** `tasks` is the task records bucket: running tasks are checked against it. */
export async function openLimitGate(nc: NatsConnection, tasks: KV, limits: LimitsConfig, now: () => Date): Promise<LimitGate> {
  const { windowMs, ...caps } = limits;
  if (Object.values(caps).every((cap) => cap === undefined)) return { admit: async () => NOTHING_TAKEN };
  const stores = { limits: await openLimitsBucket(nc), usage: await openUsageBucket(nc), tasks };

  return {
    async admit({ taskId, user, spec }) {
      const at = now();
      const account = accountOf(spec);
      const taken: Array<() => Promise<void>> = [];
      const giveBack = async () => {
        for (const undo of taken.splice(0).reverse()) await undo();
      };
      try {
        const window = windowOf(at.getTime(), windowMs);
        const resetsAt = new Date(window.end).toISOString();
        for (const [limit, kind, who, value] of [
          ['triggersPerUser', 'user', user, limits.triggersPerUser],
          ['triggersPerRepo', 'repo', account.repo, limits.triggersPerRepo],
        ] as const) {
          if (value === undefined) continue;
          const key = triggerKey(kind, who, window);
          const answer = await takeTrigger(stores.usage, key, value);
          if (!answer.taken) throw new LimitReached({ limit, subject: who, value, current: answer.count, windowMs, resetsAt }, taskId);
          taken.push(() => returnTrigger(stores.usage, key));
        }
        const cap = limits.concurrentTasksPerRepo;
        if (cap !== undefined) {
          const answer = await takeRunningSlot(stores, account.repo, taskId, cap, at);
          if (!answer.taken) throw new LimitReached({ limit: 'concurrentTasksPerRepo', subject: account.repo, value: cap, current: answer.running.length, running: answer.running }, taskId);
          if (answer.added) taken.push(() => returnRunningSlot(stores.limits, account.repo, taskId));
        }
        await checkSpend(stores.usage, limits, account, at, taskId);
      } catch (err) {
        await giveBack();
        throw err;
      }
      return { release: giveBack };
    },
  };
}

async function checkSpend(usage: KV, limits: LimitsConfig, account: Account, at: Date, taskId: string): Promise<void> {
  const day = utcDay(at);
  const resetsAt = new Date(Date.parse(`${day}T00:00:00.000Z`) + 86_400_000).toISOString();
  for (const [limit, scope, subject, value] of [
    ['dailySpendUsdPerRepo', 'repo', account.repo, limits.dailySpendUsdPerRepo],
    ['dailySpendUsdPerOrg', 'org', account.org, limits.dailySpendUsdPerOrg],
  ] as const) {
    if (value === undefined || subject === undefined) continue;
    const spent = await spentOn(usage, day, account, scope);
    if (spent >= value) throw new LimitReached({ limit, subject, value, current: spent, resetsAt }, taskId);
  }
}
