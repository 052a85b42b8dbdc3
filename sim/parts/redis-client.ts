// One way to get a Redis client for the feed store and the graph cache: a real server when a URL is
// given, otherwise an in-process ioredis-mock whose data belongs to one named node.

import { Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';

export interface RedisClientOptions {
  /** redis:// URL of a real server; without it the client is an in-process mock. */
  url?: string;
  /** Node name ('feed-primary', 'feed-replica', 'graph', …). Mock clients with the same name share data; different names never do. */
  name: string;
}

/** Mock clients made here, so that `isMockRedis` can tell them apart without relying on mock internals. */
const mockClients = new WeakSet<Redis>();

/**
 * ioredis-mock shares one dataset among all instances with the same `host:port/db`, and its host is
 * only a map key (nothing resolves it), so a host derived from the name gives each node its own
 * data without the collisions a port derived from a hash could have.
 */
function mockHost(name: string): string {
  return `${encodeURIComponent(name)}.scalegram.mock`;
}

export function createRedis(options: RedisClientOptions): Redis {
  if (options.url) {
    // connectionName shows the node in CLIENT LIST; CLIENT SETNAME refuses spaces, so they go.
    return new Redis(options.url, { connectionName: options.name.replace(/[^\w.:-]/g, '_') });
  }
  const client = new RedisMock({ host: mockHost(options.name), port: 6379 });
  mockClients.add(client);
  return client;
}

/** Registers a view of a mock client (the AOF proxy, sim/parts/redis-aof.ts) as a mock, so it is served as one. */
export function markMockView(view: Redis): Redis {
  mockClients.add(view);
  return view;
}

/** True for clients that createRedis backed with ioredis-mock, and views of them (markMockView). */
export function isMockRedis(client: Redis): boolean {
  return mockClients.has(client);
}

/** Closes a client made by createRedis; a mock keeps its data for later clients with the same name. */
export async function closeRedis(client: Redis): Promise<void> {
  if (isMockRedis(client)) {
    client.disconnect();
    return;
  }
  // QUIT waits for replies already in flight; a client that never connected has nothing to wait for.
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // Fall through: the connection broke while quitting.
    }
  }
  client.disconnect();
}
