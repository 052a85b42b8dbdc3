// hash-vs-range — the same signup surge against range sharding (the seed's MongoDB-style
// alternative: every new user lands in the newest range, one hot shard) and modulo sharding
// (Instagram's: consecutive signups spread over all logical shards). Run it twice and compare:
//   scalegram run scenarios/hash-vs-range.ts -e STRATEGY=range  --speed 720 --scale 0.05
//   scalegram run scenarios/hash-vs-range.ts -e STRATEGY=modulo --speed 720 --scale 0.05
//
// Numbers (../shared/BRIEF.md, "Sharding" and "Load figures"): the Android-launch surge, 23
// signups/s for 12 hours, each new user following a few accounts and posting once (assumed).

import { check } from 'k6';
import exec from 'k6/execution';
import * as api from './lib/api.ts';
import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

const STRATEGY = __ENV.STRATEGY === 'modulo' ? 'modulo' : 'range';
// Range shards fill 500 users each (× --scale), so the surge walks through a few hot shards.
export const topology = { extends: '2012-sharded', name: `hash-vs-range-${STRATEGY}`, shards: { strategy: STRATEGY, usersPerRange: Math.max(50, Math.round(500 * Number(__ENV.SCALE || '1'))) } };

const photo = open('./assets/photo.jpg', 'b');

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

export async function setup(): Promise<{ base: api.SeededUser[] }> {
  await api.seed({ users: 1000, avgFollows: 10, celebrities: 3, mediaPerUser: 1, seed: Number(__ENV.SEED || '1') });
  // New users follow accounts across the whole base, not a handful of sampled ones.
  return { base: await api.users(0, 1000) };
}

export async function newUser(data: { base: api.SeededUser[] }): Promise<void> {
  const n = exec.scenario.iterationInTest;
  const u = await api.signup(`surge_${exec.vu.idInTest}_${n}`, `Surge ${n}`);
  if (!check(u, { 'signed up': (x) => x !== null })) return;
  for (let i = 0; i < 3; i++) {
    const t = data.base[Math.floor(Math.random() * data.base.length)]!;
    check(await api.follow(u!.access_token, t.id), { 'follow ok': (r) => r.status === 200 });
  }
  check(await api.upload(u!.access_token, photo, 'first post #android'), { 'upload ok': (r) => r.status === 200 });
}
