// The machine's Redis and RabbitMQ for the tests of the real backends: whether both answer (the
// project's own probes), and removing what a test left under a namespace it chose (a named
// namespace is the deployment's: a topology leaves its queues and keys when it closes).

import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { probeAmqp, probeRedis, realStack } from '../../sim/backends/probe.ts';

export const { redisUrl, amqpUrl } = realStack(process.env);

/** Every job kind the service queues: a namespace's queues are `scalegram.<ns>.<kind>`. */
const KINDS = ['resize', 'fanout', 'fanout-chunk', 'geo-index', 'notify', 'realtime-match', 'realtime-notify'];

/** Null when RabbitMQ and Redis both answer, else why not (the first that did not). */
export async function realBackendsDown(): Promise<string | null> {
  return (await probeAmqp(amqpUrl)) ?? (await probeRedis(redisUrl));
}

/** Deletes the namespace's Redis keys and RabbitMQ queues. */
export async function removeNamespace(ns: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `scalegram:${ns}:*`, 'COUNT', 5000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  const c = await amqp.connect(amqpUrl);
  try {
    const ch = await c.createChannel();
    for (const kind of KINDS) await ch.deleteQueue(`scalegram.${ns}.${kind}`).catch(() => undefined);
  } finally {
    await c.close().catch(() => undefined);
  }
}
