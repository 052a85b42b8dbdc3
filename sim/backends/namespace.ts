// A deployment's namespace: it names the RabbitMQ queues (`scalegram.<namespace>.<kind>`) and the
// real-Redis keys (`scalegram:<namespace>:`) that a server and its `scalegram worker` processes share.

import amqp from 'amqplib';
import { Redis } from 'ioredis';

/** Why `name` cannot be a namespace (1–64 letters, digits, _ . -), or null. */
export function namespaceProblem(name: string): string | null {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? null : `namespace "${name}" must be 1–64 letters, digits or _ . -`;
}

/** The job kinds whose queues a deployment declares (sim/domain: photo store, subscriptions, fan-out delivery). */
export const QUEUED_JOB_KINDS: readonly string[] = ['fanout', 'fanout-chunk', 'resize', 'geo-index', 'notify', 'realtime-match', 'realtime-notify'];

/**
 * Removes what a deployment left under a namespace: its RabbitMQ queues and its real-Redis keys
 * (serve --workers does, at stop, for the namespace it made up). Each part that does not answer is
 * left, and named in the result.
 */
export async function removeNamespace(o: { namespace: string; amqpUrl?: string; redisUrl?: string }): Promise<{ queues: number; keys: number; failed: string[] }> {
  const out = { queues: 0, keys: 0, failed: [] as string[] };
  if (o.amqpUrl) {
    try {
      const conn = await amqp.connect(o.amqpUrl, { timeout: 5000 });
      try {
        const ch = await conn.createChannel();
        for (const kind of QUEUED_JOB_KINDS) {
          await ch.deleteQueue(`scalegram.${o.namespace}.${kind}`);
          out.queues++;
        }
        await ch.close();
      } finally {
        await conn.close().catch(() => undefined);
      }
    } catch (e) {
      out.failed.push(`RabbitMQ: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (o.redisUrl) {
    const redis = new Redis(o.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5000, retryStrategy: () => null });
    try {
      await redis.connect();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `scalegram:${o.namespace}:*`, 'COUNT', 1000);
        if (keys.length) out.keys += await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } catch (e) {
      out.failed.push(`Redis: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      redis.disconnect();
    }
  }
  return out;
}
