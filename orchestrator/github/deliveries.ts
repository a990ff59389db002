/**
 * Webhook deliveries already seen, one KV key per `X-GitHub-Delivery` id in
 * `sg-github-deliveries`, kept for a week. `claim` is a KV create, so of two serve processes
 * given the same delivery (GitHub's redelivery, a replay) exactly one handles it. A delivery
 * whose handling failed is released, so GitHub's "Redeliver" (same id) runs it again.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { GITHUB_DELIVERIES_BUCKET } from '../../core/bus/subjects.js';
import { openAgingBucket } from '../../core/bus/topology.js';

const KEEP_MS = 7 * 24 * 60 * 60_000;

/** GitHub's delivery ids are GUIDs; anything that could not be a KV key is refused before use. */
export const DELIVERY_ID = /^[A-Za-z0-9-]{1,100}$/;

export interface DeliveryStore {
  /** True for the first claim of this delivery id; false when it was seen before. */
  claim(deliveryId: string, event: string): Promise<boolean>;
  release(deliveryId: string): Promise<void>;
}

export async function openDeliveryStore(nc: NatsConnection, keepMs = KEEP_MS): Promise<DeliveryStore> {
  const kv = await openAgingBucket(nc, GITHUB_DELIVERIES_BUCKET, keepMs);
  return {
    async claim(deliveryId, event) {
      try {
        await kv.create(deliveryId, JSON.stringify({ event, at: new Date().toISOString() }));
        return true;
      } catch (err) {
        if (err instanceof Error && /wrong last sequence|key exists/i.test(err.message)) return false;
        throw err;
      }
    },
    async release(deliveryId) {
      await kv.delete(deliveryId);
    },
  };
}
