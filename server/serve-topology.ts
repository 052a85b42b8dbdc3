// The photo service as `scalegram run` serves it, from its own worker thread (server/thread.ts) or
// in process (--in-process): a topology built from a config and a seed, on 127.0.0.1:port.

import type { TopologyConfig } from '../sim/topology-config.ts';
import { ServiceHost } from './service-host.ts';
import type { MemcachedSpec } from '../sim/backends/memcached.ts';
import type { PostgresServerSpec } from '../sim/backends/postgres/pg-tier.ts';

export interface ServeOptions {
  config: TopologyConfig;
  seed: number;
  port: number;
  adminToken: string;
  /** Real backends for the topology (`scalegram run --stack real`); default all embedded. */
  backends?: { redisUrl?: string; amqpUrl?: string; memcached?: MemcachedSpec; postgres?: readonly PostgresServerSpec[] };
}

/** Builds the topology and listens; on failure closes what it built and rethrows. POST /_sim/reset replaces the topology (server/service-host.ts). */
export async function serveTopology(o: ServeOptions): Promise<ServiceHost> {
  // Every VU connects from 127.0.0.1: no per-address cap. Idle connections are kept longer than
  // the runner's own client keeps them (60 s), as the server did before it had an idle timeout,
  // so the client is the one that closes and idle VUs do not reconnect all at once.
  const host = await ServiceHost.start({
    config: o.config,
    seed: o.seed,
    ...(o.backends ? { topology: { ...o.backends } } : {}),
    app: { rateLimitPerHour: 0, adminToken: o.adminToken, connections: { maxConnectionsPerAddress: 0, idleTimeoutMs: 65_000 } },
  });
  try {
    await host.listen(o.port, '127.0.0.1');
    return host;
  } catch (e) {
    await host.close().catch(() => undefined);
    throw e;
  }
}
