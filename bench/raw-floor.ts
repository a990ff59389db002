/**
 * The raw floor: one message through JetStream and back, with nothing of Stagegate in the way.
 * Publish (awaiting the PubAck) to a work-queue stream of the bench's own, receive it from a
 * pull consumer that already has a pull waiting (as the orchestrator's consume() does), ack it
 * and await the server's ack confirmation; sequential, after a warm-up. Any step of the pipeline
 * costs at least this much, so the pipeline's per-hop overhead is judged against it.
 */
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { performance } from 'node:perf_hooks';
import { connectBus } from '../core/bus/connect.js';
import { roundMs, roundSummary, summarize } from './stats.js';
import { formatMs, type BenchContext, type Suite, type SuiteReport } from './suite.js';

/** The bench's own stream, outside Stagegate's subject space. */
const STREAM = 'BENCH_FLOOR';
const SUBJECT = 'bench.floor';
const CONSUMER = 'bench-floor';

const WARM_UP = 200;
const ROUND_TRIPS = 2_000;
/** About the size of a job or result on the Stagegate bus. */
const PAYLOAD = JSON.stringify({ type: 'bench.ping', padding: 'x'.repeat(480) });

/** Figure names other suites read. */
export const FLOOR_P50_MS = 'rawFloor.roundTripP50Ms';

export const rawFloorSuite: Suite = {
  id: 'rawFloor',
  title: 'raw JetStream floor',
  run: measureRawFloor,
};

async function measureRawFloor(ctx: BenchContext): Promise<SuiteReport> {
  const nc = await connectBus(ctx.natsUrl, 'bench-raw-floor');
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: [SUBJECT], retention: RetentionPolicy.Workqueue, storage: StorageType.File });
  await jsm.consumers.add(STREAM, { durable_name: CONSUMER, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
  const js = jetstream(nc);
  const messages = await (await js.consumers.get(STREAM, CONSUMER)).consume({ max_messages: 16 });
  const incoming = messages[Symbol.asyncIterator]();

  const roundTrip: number[] = [];
  const delivery: number[] = [];
  let loopBefore = performance.eventLoopUtilization();
  try {
    for (let i = 0; i < WARM_UP + ROUND_TRIPS; i++) {
      if (i === WARM_UP) loopBefore = performance.eventLoopUtilization();
      const start = performance.now();
      const received = incoming.next().then((next) => ({ next, at: performance.now() }));
      await js.publish(SUBJECT, PAYLOAD);
      const { next, at } = await received;
      if (next.done === true) throw new Error(`the consumer on ${STREAM} stopped after ${i} messages`);
      await (next.value as JsMsg).ackAck();
      const end = performance.now();
      if (i >= WARM_UP) {
        roundTrip.push(end - start);
        delivery.push(at - start);
      }
    }
  } finally {
    loopBefore = performance.eventLoopUtilization(loopBefore);
    messages.stop();
    await jsm.streams.delete(STREAM);
    await nc.drain();
  }

  const total = summarize(roundTrip);
  const transit = summarize(delivery);
  return {
    rows: [
      { metric: 'publish → pull-consume → ack round trip p50', value: formatMs(total.p50) },
      { metric: 'publish → pull-consume → ack round trip p99', value: formatMs(total.p99) },
      { metric: '  of which publish → message received, p50', value: formatMs(transit.p50) },
    ],
    notes: [`${ROUND_TRIPS} sequential round trips after ${WARM_UP} of warm-up, ${PAYLOAD.length}-byte payload, file storage`],
    figures: { [FLOOR_P50_MS]: total.p50 },
    targets: [],
    details: {
      definition: 'sequential: publish awaiting the PubAck, receive from a pull consumer with a pull waiting, ackAck; file storage, work-queue retention',
      warmUp: WARM_UP,
      payloadBytes: PAYLOAD.length,
      roundTripMs: roundSummary(total),
      publishToReceivedMs: roundSummary(transit),
      /** How much of a round trip is this process's own work (nats.js encode, parse, promises). */
      eventLoopBusyMsPerRoundTrip: roundMs(loopBefore.active / ROUND_TRIPS),
    },
  };
}
