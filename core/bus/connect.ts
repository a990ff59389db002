import { connect, type NatsConnection } from '@nats-io/transport-node';
import { StagegateError, errorMessage } from '../errors.js';

export type { NatsConnection };

/**
 * Connects once (failing fast with the URL named, so a wrong NATS_URL is obvious), then
 * reconnects forever: a restarted nats-server must not take the processes down with it.
 */
export async function connectBus(url: string, name: string): Promise<NatsConnection> {
  try {
    return await connect({
      servers: url.split(','),
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5_000,
      // Async stack traces capture a stack on every request; errors still carry their own.
      noAsyncTraces: true,
    });
  } catch (err) {
    throw new StagegateError(
      'NATS_UNREACHABLE',
      `cannot reach NATS at ${url}: ${errorMessage(err)} (start nats-server with JetStream, or set NATS_URL)`,
      { cause: err },
    );
  }
}
