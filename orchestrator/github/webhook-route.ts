/**
 * `POST /webhooks/github`. The body is read raw (up to the size limit, else 413) and its
 * `X-Hub-Signature-256` checked against the webhook secret with @octokit/webhooks before
 * anything else: a missing or wrong signature gets 401 and changes nothing. A delivery id seen
 * before gets 200 and is ignored; an event the channel does not act on gets 202 and is ignored.
 * A delivery that means work is answered when the work is done (200), or failed (500), or after
 * `answerWithinMs` while it goes on (202): GitHub waits ten seconds at most, and a decision may
 * take longer. A failed delivery is released, so GitHub's "Redeliver" (same id) runs it again.
 */
import { Webhooks } from '@octokit/webhooks';
import express from 'express';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { HttpError } from '../serve/http-errors.js';
import type { RouteModule } from '../serve/route-module.js';
import { DELIVERY_ID, type DeliveryStore } from './deliveries.js';

export const GITHUB_WEBHOOK_PATH = '/webhooks/github';

const EVENT_NAME = /^[a-z_]{1,64}$/;
/** Under GitHub's ten seconds, with room for the answer to travel. */
const ANSWER_WITHIN_MS = 8_000;

/** What a delivery means: work to run, or why it is ignored. */
export type RoutedDelivery = { ignored: string } | { work: string; run: () => Promise<void> };

export interface WebhookRouteDeps {
  secret: string;
  bodyLimitBytes: number;
  deliveries: DeliveryStore;
  /** Parses the payload of an event the channel acts on (throws SCHEMA_INVALID: 400) and says what to do. */
  route(event: string, payload: unknown): RoutedDelivery;
  /** Keeps the work under way, so stopping can wait for it. */
  track(work: Promise<void>): void;
  log: Logger;
  answerWithinMs?: number;
}

export function githubWebhookRoutes(deps: WebhookRouteDeps): RouteModule {
  const { log } = deps;
  const webhooks = new Webhooks({ secret: deps.secret });
  const router = express.Router();

  router.post(GITHUB_WEBHOOK_PATH, express.raw({ type: () => true, limit: deps.bodyLimitBytes }), async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    const signature = req.get('x-hub-signature-256');
    if (signature === undefined || signature === '') {
      throw new HttpError(401, 'UNAUTHORIZED', 'missing X-Hub-Signature-256: GitHub signs every delivery with the webhook secret');
    }
    if (!(await verifies(webhooks, body, signature))) {
      log.warn({ delivery: req.get('x-github-delivery'), event: req.get('x-github-event') }, 'github webhook with a bad signature refused');
      throw new HttpError(401, 'UNAUTHORIZED', 'X-Hub-Signature-256 does not match the body and the webhook secret');
    }
    const event = req.get('x-github-event') ?? '';
    const delivery = req.get('x-github-delivery') ?? '';
    if (!EVENT_NAME.test(event)) throw new HttpError(400, 'SCHEMA_INVALID', 'expected an X-GitHub-Event header naming the event');
    if (!DELIVERY_ID.test(delivery)) throw new HttpError(400, 'SCHEMA_INVALID', 'expected an X-GitHub-Delivery header with the delivery id');
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      throw new HttpError(400, 'SCHEMA_INVALID', `the ${event} delivery ${delivery} is not JSON`);
    }
    const routed = deps.route(event, payload);
    if (!(await deps.deliveries.claim(delivery, event))) {
      log.info({ delivery, event }, 'github delivery seen before; ignored');
      res.status(200).json({ status: 'duplicate', delivery, message: 'this delivery was received before; ignored' });
      return;
    }
    if ('ignored' in routed) {
      log.debug({ delivery, event, reason: routed.ignored }, 'github delivery ignored');
      res.status(202).json({ status: 'ignored', delivery, reason: routed.ignored });
      return;
    }
    let failed = false;
    const work = routed.run().catch(async (err: unknown) => {
      failed = true;
      log.error({ delivery, event, work: routed.work, err: errorMessage(err) }, 'github delivery failed; it may be redelivered');
      await deps.deliveries.release(delivery).catch((releaseErr: unknown) => {
        log.error({ delivery, err: errorMessage(releaseErr) }, 'github delivery could not be released for redelivery');
      });
    });
    deps.track(work);
    const finished = await settledWithin(work, deps.answerWithinMs ?? ANSWER_WITHIN_MS);
    if (!finished) {
      res.status(202).json({ status: 'accepted', delivery, work: routed.work, message: 'still being handled' });
    } else if (failed) {
      throw new HttpError(500, 'INTERNAL', `handling the ${event} delivery ${delivery} failed; the server log has the details, and a redelivery runs it again`);
    } else {
      res.status(200).json({ status: 'handled', delivery, work: routed.work });
    }
  });

  return {
    name: 'github',
    mount(app) {
      app.use(router);
    },
  };
}

/** True when `work` settled within `ms` (it never rejects: failures are caught where it is made). */
async function settledWithin(work: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** @octokit/webhooks throws on input it cannot compare (an empty body, say): that is no match either. */
async function verifies(webhooks: Webhooks, body: string, signature: string): Promise<boolean> {
  try {
    return await webhooks.verify(body, signature);
  } catch {
    return false;
  }
}
