// hash-vs-range — the same signup surge against range sharding (the seed's MongoDB-style
// alternative: every new user lands in the newest range, one hot shard) and modulo sharding
// (Instagram's: consecutive signups spread over all logical shards). Run it twice and compare:
//   scalegram run scenarios/hash-vs-range.ts -e STRATEGY=range  --speed 720 --scale 0.05
//   scalegram run scenarios/hash-vs-range.ts -e STRATEGY=modulo --speed 720 --scale 0.05
//
// Numbers (../shared/BRIEF.md, "Sharding" and "Load figures"): the Android-launch surge, 23
// signups/s for 12 hours, each new user following a few accounts and posting once (assumed).

import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';
import { iteration, seedPopulation, type Population, type SetupData, type Work } from './lib/work.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

const STRATEGY = __ENV.STRATEGY === 'modulo' ? 'modulo' : 'range';
// Range shards fill 500 users each (× --scale), so the surge walks through a few hot shards.
export const topology = { extends: '2012-sharded', name: `hash-vs-range-${STRATEGY}`, shards: { strategy: STRATEGY, usersPerRange: Math.max(50, Math.round(500 * Number(__ENV.SCALE || '1'))) } };

const photo = open('./assets/photo.jpg', 'b');

// The base the surge lands on: 1,000 accounts whatever the scale (minAccounts).
export const population: Population = { accounts: 1000, avgFollows: 10, celebrities: 3, mediaPerUser: 1, minAccounts: 1000 };
const FOLLOWS_PER_SIGNUP = 3; // assumed

export const options = {
  scenarios: {
    telemetry: telemetryScenario('12h'),
    surge: { executor: 'constant-arrival-rate', rate: 23, timeUnit: '1s', duration: '12h', preAllocatedVUs: 50, maxVUs: 300, exec: 'newUser' },
  },
  thresholds: {
    // Physical servers: range sends the surge to one of 12 (skew → 12), modulo spreads it (≈ 1).
    server_skew: ['med<3'],
    'http_req_duration{name:signup}': ['p(95)<1000'],
  },
};

export const work = {
  sampleTopology: [],
  newUser: [
    { op: 'signup', username: 'surge', fullName: 'Surge' },
    { op: 'follow', who: 'new', whom: 'user', count: FOLLOWS_PER_SIGNUP },
    { op: 'upload', who: 'new', caption: 'first post #android' },
  ],
} satisfies Work;

export async function setup(): Promise<SetupData> {
  // New users follow accounts across the whole base, not a handful of sampled ones.
  return seedPopulation(population, { roster: 1000 });
}

export const newUser = iteration(work.newUser, { photo });
