/**
 * Buckets whose entries age out get their age limit whether they are new or were made before
 * they had one (creating a bucket that exists changes nothing): a real nats-server.
 */
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBus, type NatsConnection } from '../../core/bus/connect.js';
import { openAgingBucket } from '../../core/bus/topology.js';
import { startTestNatsServer, type TestNatsServer } from '../helpers/nats-server.js';

const DAY_MS = 24 * 60 * 60_000;

let server: TestNatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connectBus(server.url, 'aging-bucket-test');
});

afterAll(async () => {
  await nc?.drain();
  await server?.cleanup();
});

describe('openAgingBucket', () => {
  it('creates a bucket with the age limit', async () => {
    const kv = await openAgingBucket(nc, 'sg-test-new', 3 * DAY_MS);
    expect((await kv.status()).ttl).toBe(3 * DAY_MS);
  });

  it('brings a bucket made without an age limit, or with another, to it, keeping its entries', async () => {
    const old = await new Kvm(nc).create('sg-test-old', { history: 1 });
    await old.put('kept', 'yes');
    expect((await old.status()).ttl).toBe(0);

    const kv = await openAgingBucket(nc, 'sg-test-old', 90 * DAY_MS);
    expect((await kv.status()).ttl).toBe(90 * DAY_MS);
    expect((await kv.get('kept'))?.string()).toBe('yes');

    const shorter = await openAgingBucket(nc, 'sg-test-old', 7 * DAY_MS);
    expect((await shorter.status()).ttl).toBe(7 * DAY_MS);
  });
});
