// Whether the real parts answer, and where they are by default: the machine's own services, as
// `scalegram run --stack real`, the bench and the tests find them (each URL overridable from the
// environment).

import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { redact } from './amqp-queue.ts';
import { MEMCACHED_BINARY, MemcachedNode, type MemcachedSpec } from './memcached.ts';
import { spawnSync } from 'node:child_process';
import { parsePostgresServers, type PostgresServerSpec } from './postgres/pg-tier.ts';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/**
 * The real backends a run uses: $REDIS_URL and $AMQP_URL, else this machine's defaults; memcached at
 * $MEMCACHED_SERVERS (host:port,… one per cache node), else processes the run starts (`local`).
 */
export interface RealStack {
  redisUrl: string;
  amqpUrl: string;
  memcached: MemcachedSpec;
  /** Postgres servers for the store (a stack's); absent: the databases are embedded. */
  postgres?: readonly PostgresServerSpec[];
}

export function realStack(env: NodeJS.ProcessEnv): RealStack {
  const servers = (env.MEMCACHED_SERVERS ?? '').split(',').map((a) => a.trim()).filter((a) => a !== '');
  return {
    redisUrl: env.REDIS_URL || DEFAULT_REDIS_URL,
    amqpUrl: env.AMQP_URL || DEFAULT_AMQP_URL,
    memcached: servers.length > 0 && servers.join(',') !== 'local' ? servers : 'local',
    ...(env.POSTGRES_SERVERS ? { postgres: parsePostgresServers(env.POSTGRES_SERVERS) } : {}),
  };
}

/**
 * Null when memcached can be used: for `local`, the memcached program runs (`-V`); for addresses,
 * each answers `stats` within half a second. Else why not.
 */
export async function probeMemcached(spec: MemcachedSpec): Promise<string | null> {
  if (spec === 'local') {
    const r = spawnSync(MEMCACHED_BINARY, ['-V'], { encoding: 'utf8', timeout: 5000 });
    if (r.error || r.status !== 0) return `memcached (${MEMCACHED_BINARY}) cannot be started here: ${r.error?.message ?? (r.stderr || `exit ${r.status}`).trim()}; install it (Debian: apt-get install memcached) or set MEMCACHED_SERVERS`;
    return null;
  }
  for (const entry of spec) {
    const address = typeof entry === 'string' ? entry : entry.address;
    const node = new MemcachedNode(address);
    try {
      await node.stats();
    } catch (err) {
      return `memcached at ${address} did not answer: ${(err as Error).message || String(err)}`;
    } finally {
      await node.close();
    }
  }
  return null;
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
