// shard-split — a hot physical server is split under load: a new server is added (Instagram cloned
// it as a streaming replica) and half of its logical shards are repointed to it, while reads and
// writes continue. Nothing may be lost; ops per physical server show the load moving.
//
// Numbers (../shared/BRIEF.md, "Sharding"): thousands of logical shards pre-split and mapped to far
// fewer servers; a move = clone as a replica, then repoint half the logical shards. Load: the
// android-launch mix at a quarter of its rates (assumed).
// Run: scalegram run scenarios/shard-split.ts --speed 10 --scale 0.2

import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';
import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

// The base at full scale (× --scale; live runs seed at least 500 accounts).
export const population: Population = { accounts: 30_000, avgFollows: 20, celebrities: 3, mediaPerUser: 2, minAccounts: 500 };

export const options = {
  scenarios: {
    telemetry: telemetryScenario('10m'),
    writes: { executor: 'constant-arrival-rate', rate: 60, timeUnit: '1s', duration: '10m', preAllocatedVUs: 30, maxVUs: 200, exec: 'write' },
    reads: { executor: 'constant-arrival-rate', rate: 300, timeUnit: '1s', duration: '10m', preAllocatedVUs: 50, maxVUs: 300, exec: 'read' },
    split: { executor: 'shared-iterations', vus: 1, iterations: 1, startTime: '3m', exec: 'split', maxDuration: '10m' },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:feed}': ['p(95)<500'],
  },
};

export const work = {
  sampleTopology: [],
  write: [
    { op: 'user_media', who: 'user', owner: 'user', count: 1 },
    { op: 'like', who: 'user' },
  ],
  read: [{ op: 'feed', who: 'user' }],
  // Half of server 0's logical shards move to a new server.
  split: [{ op: 'admin', action: 'shard_split', cluster: 'main', server: 0 }],
} satisfies Work;

export async function setup(): Promise<SetupData> {
  return seedPopulation(population);
}

export const write = iteration(work.write);
export const read = iteration(work.read);
export const split = iteration(work.split);
