// cache-node-loss — one of the six memcached nodes dies at peak. Its keys miss and fall through to
// the shards (a miss storm), then the cache refills. With ketama only ~1/6 of keys move; compare
// with `-e HASHING=modulo`, where nearly all would.
//
// Around the kill a celebrity's photo goes viral, and likes keep deleting it from the cache: the
// thundering herd Facebook's leases were made for (try `-e LEASES=true`).
//
// With `-e GUTTER=1` the topology has a gutter pool of one node, and the dead node stays on the ring
// (Facebook's way: no rehashing, so no hot keys cascading onto the neighbours): its keys are read
// from the gutter, and their misses filled into it for 10 s, instead of all reaching the shards.
// `-e REMOVE_FROM_RING=false` without a gutter shows what the gutter saves: clients keep sending the
// dead node its keys, and every one of those lookups falls through to the shards.
//
// Numbers (../shared/BRIEF.md, "Caches"): 6 memcached nodes, look-aside, ketama with ~160 points
// per node; memcached at 50k req/s had requests stuck > 1.5 s; leases cut a herd from 17K/s to 1.3K/s.
// Read load: a feed-heavy mix at READ_RATE/s (assumed 1000/s); the viral photo's views and likes
// at VIEW_RATE and LIKE_RATE (assumed below). A herd is (reads/s of a key) × (time to fill it), so
// it shows at full rates: simulate at full scale (about 10 s), or run live at a fraction of them.
// Run: scalegram simulate scenarios/cache-node-loss.ts [-e LEASES=true] [-e GUTTER=1]
//      scalegram run scenarios/cache-node-loss.ts --speed 10 --scale 0.2 -e READ_RATE=100   (live)

import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';
import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

// Gutter nodes (0: none; Facebook kept about 1% of its memcached servers as gutter).
const GUTTER = Number(__ENV.GUTTER || '0');
if (!Number.isInteger(GUTTER) || GUTTER < 0 || GUTTER > 64) throw new Error(`GUTTER must be a whole number of gutter nodes from 0 to 64 (got "${__ENV.GUTTER}")`);

// A yes-or-no option: `true` or `false` (unset or empty: the default); anything else is refused.
function flag(name: string, fallback: boolean): boolean {
  const v = __ENV[name] || String(fallback);
  if (v !== 'true' && v !== 'false') throw new Error(`${name} must be true or false (got "${__ENV[name]}")`);
  return v === 'true';
}

// Whether clients take the dead node off the ring (by default, unless a gutter pool takes its keys).
const REMOVE_FROM_RING = flag('REMOVE_FROM_RING', GUTTER === 0);

export const topology = { extends: '2012-sharded', cache: { hashing: __ENV.HASHING === 'modulo' ? 'modulo' : 'ketama', leases: flag('LEASES', false), gutter: GUTTER } };

// The base at full scale (× --scale; live runs seed at least 500 accounts).
export const population: Population = { accounts: 50_000, avgFollows: 30, celebrities: 5, mediaPerUser: 3, minAccounts: 500 };

const READ_RATE = Number(__ENV.READ_RATE || '1000');
// At peak the celebrities' newest photos go viral (assumed: three views for every feed read, one like
// for every ten): VIEW_RATE views/s of their profiles, LIKE_RATE likes/s on their photos. Each like
// deletes the cached photo (delete on write), so the hottest keys are refilled again and again:
// Facebook's thundering herd.
const VIEW_RATE = Number(__ENV.VIEW_RATE || String(3 * READ_RATE));
const LIKE_RATE = Number(__ENV.LIKE_RATE || String(Math.max(1, Math.round(READ_RATE / 10))));

export const options = {
  scenarios: {
    telemetry: telemetryScenario('20m'),
    reads: { executor: 'constant-arrival-rate', rate: READ_RATE, timeUnit: '1s', duration: '20m', preAllocatedVUs: 100, maxVUs: 500, exec: 'read' },
    // Nine to twelve minutes in: the viral photo (the node dies in the middle of it).
    views: { executor: 'constant-arrival-rate', rate: VIEW_RATE, timeUnit: '1s', startTime: '9m', duration: '3m', gracefulStop: '2m', preAllocatedVUs: 200, maxVUs: 2000, exec: 'view' },
    likes: { executor: 'constant-arrival-rate', rate: LIKE_RATE, timeUnit: '1s', startTime: '9m', duration: '3m', gracefulStop: '2m', preAllocatedVUs: 20, maxVUs: 200, exec: 'like' },
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

export const work = {
  sampleTopology: [],
  read: [{ op: 'feed', who: 'user' }],
  view: [{ op: 'user_media', who: 'user', owner: 'celebrity', count: 1 }],
  like: [
    { op: 'user_media', who: 'user', owner: 'celebrity', count: 1 },
    { op: 'like', who: 'user' },
  ],
  // Off the ring: with ketama ~1/6 of keys move to other nodes; with modulo nearly all do. With a
  // gutter pool it stays on the ring, and the gutter takes its keys.
  killNode: [{ op: 'admin', action: 'cache_kill', node: 'cache-2', removeFromRing: REMOVE_FROM_RING }],
  reviveNode: [{ op: 'admin', action: 'cache_revive', node: 'cache-2' }],
} satisfies Work;

export async function setup(): Promise<SetupData> {
  return seedPopulation(population);
}

export const read = iteration(work.read);
export const view = iteration(work.view);
export const like = iteration(work.like);
export const killNode = iteration(work.killNode);
export const reviveNode = iteration(work.reviveNode);
