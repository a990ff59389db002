/**
 * Posts each session digest where the session asked: a comment on a GitHub issue, a message in
 * a Slack channel. Runs in `serve`, the process that holds those credentials. Each digest is
 * posted once per target; a target that already has it (a redelivery after a crash between
 * posting and acking) is skipped.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { SessionLogEntry, type SessionDigest } from '../../core/bus/session-messages.js';
import { SESSION_DIGEST_BUCKET, SESSION_DIGEST_CONSUMER, subjects } from '../../core/bus/subjects.js';
import { versionedKv } from '../../core/bus/versioned-kv.js';
import type { Logger } from '../../core/log.js';
import { Kvm } from '@nats-io/kv';
import { followLog, type FollowingLog } from '../channels/follow-log.js';

export interface DigestPosters {
  github?: (target: NonNullable<SessionDigest['digestTo']['github']>, text: string) => Promise<void>;
  slack?: (channel: string, text: string) => Promise<void>;
}

const Posted = z.object({ targets: z.array(z.string()) });

export async function startDigestChannel(options: { nc: NatsConnection; posters: DigestPosters; log: Logger }): Promise<FollowingLog> {
  const { posters, log } = options;
  const posted = versionedKv(await new Kvm(options.nc).create(SESSION_DIGEST_BUCKET, { history: 1 }), Posted, (key) => `posted digest ${key}`);
  return followLog({
    nc: options.nc,
    consumer: SESSION_DIGEST_CONSUMER,
    filterSubject: subjects.allSessionDigests,
    schema: SessionLogEntry,
    wanted: (entry) => entry.type === 'session.digest',
    describe: (entry) => ({ sessionId: 'sessionId' in entry ? entry.sessionId : entry.taskId, msgId: entry.msgId }),
    log,
    async handle(entry) {
      if (entry.type !== 'session.digest') return;
      const key = entry.msgId.replaceAll(':', '.');
      const targets: Array<[string, () => Promise<void>]> = [];
      const { github, slackChannel } = entry.digestTo;
      if (github !== undefined && posters.github !== undefined) targets.push([`github`, () => posters.github?.(github, entry.text) ?? Promise.resolve()]);
      if (slackChannel !== undefined && posters.slack !== undefined) targets.push([`slack`, () => posters.slack?.(slackChannel, entry.text) ?? Promise.resolve()]);
      for (const [target, post] of targets) {
        const stored = await posted.load(key);
        if (stored.value?.targets.includes(target)) continue;
        await post();
        await posted.save(key, { targets: [...(stored.value?.targets ?? []), target] }, stored);
        log.info({ sessionId: entry.sessionId, target, reason: entry.reason }, 'session digest posted');
      }
    },
  });
}
