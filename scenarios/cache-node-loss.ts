// cache-node-loss — one of the six memcached nodes dies at peak. Its keys miss and fall through to
// the shards (a miss storm), then the cache refills. With ketama only ~1/6 of keys move; compare
// with `-e HASHING=modulo`, where nearly all would.
//
// Numbers (../shared/BRIEF.md, "Caches"): 6 memcached nodes, look-aside, ketama with ~160 points
// per node; memcached at 50k req/s had requests stuck > 1.5 s; leases cut a herd from 17K/s to 1.3K/s
// (try `-e LEASES=true`). Read load: a feed-heavy mix at READ_RATE/s (assumed 1000/s).
// Run: scalegram run scenarios/cache-node-loss.ts --speed 10 --scale 0.2

import { check } from 'k6';
import * as api from './lib/api.ts';
import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

export const topology = { extends: '2012-sharded', cache: { hashing: __ENV.HASHING === 'modulo' ? 'modulo' : 'ketama', leases: __ENV.LEASES === 'true' } };

const SCALE = Number(__ENV.SCALE || '1');
const READ_RATE = Number(__ENV.READ_RATE || '1000');

export const options = {
  scenarios: {
    telemetry: telemetryScenario('20m'),
    reads: { executor: 'constant-arrival-rate', rate: READ_RATE, timeUnit: '1s', duration: '20m', preAllocatedVUs: 100, maxVUs: 500, exec: 'read' },
    // Ten minutes in, at peak: cache-2 dies (clients take it off the ring); five minutes later it is back, empty.
    kill: { executor: 'shared-iterations', vus: 1, iterations: 1, startTime: '10m', exec: 'killNode' },
    revive: { executor: 'shared-iterations', vus: 1, iterations: 1, startTime: '15m', exec: 'reviveNode' },
  },
  thresholds: {
    'http_req_duration{name:feed}': ['p(99)<1000'],
    cache_hit_rate: ['min>0.3'], // the dip, not the average, is the point
    http_req_failed: ['rate<0.01'],
  },
};

export async function setup(): Promise<{ users: api.SeededUser[] }> {
  await api.seed({ users: Math.max(500, Math.round(50000 * SCALE)), avgFollows: 30, celebrities: 5, mediaPerUser: 3, seed: Number(__ENV.SEED || '1') });
  return { users: await api.users(0, 2000) };
}

export async function read(data: { users: api.SeededUser[] }): Promise<void> {
  const u = data.users[Math.floor(Math.random() * data.users.length)]!;
  check(await api.feed(u.access_token), { 'feed ok': (r) => r.status === 200 });
}

export async function killNode(): Promise<void> {
  // Off the ring: with ketama ~1/6 of keys move to other nodes; with modulo nearly all do.
  await api.admin('/_sim/cache/cache-2/kill', { removeFromRing: true });
}

export async function reviveNode(): Promise<void> {
  await api.admin('/_sim/cache/cache-2/revive');
}
