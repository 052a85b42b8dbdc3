// The photo service as `scalegram run` serves it, from its own worker thread (server/thread.ts) or
// in process (--in-process): a topology built from a config and a seed, on 127.0.0.1:port.

import type { FastifyInstance } from 'fastify';
import type { TopologyConfig } from '../sim/topology-config.ts';
import { buildTopology, type Topology } from '../sim/topology.ts';
import { buildApp } from './app.ts';

export interface ServeOptions {
  config: TopologyConfig;
  seed: number;
  port: number;
  adminToken: string;
}

/** Builds the topology and listens; on failure closes what it built and rethrows. */
export async function serveTopology(o: ServeOptions): Promise<{ topology: Topology; app: FastifyInstance }> {
  const topology = await buildTopology({ config: o.config, seed: o.seed });
  let app: FastifyInstance | null = null;
  try {
    // Every VU connects from 127.0.0.1: no per-address cap. Idle connections are kept longer than
    // the runner's own client keeps them (60 s), as the server did before it had an idle timeout,
    // so the client is the one that closes and idle VUs do not reconnect all at once.
    app = await buildApp({ topology, rateLimitPerHour: 0, adminToken: o.adminToken, connections: { maxConnectionsPerAddress: 0, idleTimeoutMs: 65_000 } });
    await app.listen({ port: o.port, host: '127.0.0.1' });
    return { topology, app };
  } catch (e) {
    await app?.close().catch(() => undefined);
    await topology.close().catch(() => undefined);
    throw e;
  }
}
