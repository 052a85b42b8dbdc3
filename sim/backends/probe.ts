// Whether the real parts answer, and where they are by default: the machine's own services, as
// `scalegram run --stack real`, the bench and the tests find them (each URL overridable from the
// environment).

import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { redact } from './amqp-queue.ts';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** The real backends a run uses: $REDIS_URL and $AMQP_URL, else this machine's defaults. */
export interface RealStack {
  redisUrl: string;
  amqpUrl: string;
}

export function realStack(env: NodeJS.ProcessEnv): RealStack {
  return { redisUrl: env.REDIS_URL || DEFAULT_REDIS_URL, amqpUrl: env.AMQP_URL || DEFAULT_AMQP_URL };
}

/** Null when Redis answers PING within a second, else why not (the URL without its password). */
export async function probeRedis(url: string): Promise<string | null> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => {}); // the failure is the answer, not an unhandled 'error' event
  try {
    await client.connect();
    await client.ping();
    return null;
  } catch (err) {
    return `Redis at ${redact(url)} did not answer: ${(err as Error).message || String(err)}`;
  } finally {
    client.disconnect();
  }
}

/** Null when RabbitMQ accepts a connection within 2 s, else why not (the URL without its password). */
export async function probeAmqp(url: string): Promise<string | null> {
  try {
    const c = await amqp.connect(url, { timeout: 2000 });
    await c.close();
    return null;
  } catch (err) {
    return `RabbitMQ at ${redact(url)} did not answer: ${(err as Error).message || String(err)}`;
  }
}
