// A server process of `scalegram serve --workers N` (server/tier/worker.ts), with serve's description of the topology.

import { runTierWorker } from '../server/tier/worker.ts';
import { describeTopology } from './serve.ts';

export function runServeWorker(): Promise<void> {
  return runTierWorker({ banner: (t, redisUrl) => describeTopology(t, undefined, redisUrl) });
}
