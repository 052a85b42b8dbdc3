// shard-split — a hot physical server is split under load: a new server is added (Instagram cloned
// it as a streaming replica) and half of its logical shards are repointed to it, while reads and
// writes continue. Nothing may be lost; ops per physical server show the load moving.
//
// Numbers (../shared/BRIEF.md, "Sharding"): thousands of logical shards pre-split and mapped to far
// fewer servers; a move = clone as a replica, then repoint half the logical shards. Load: the
// android-launch mix at a quarter of its rates (assumed).
// Run: scalegram run scenarios/shard-split.ts --speed 10 --scale 0.2

import { check } from 'k6';
import * as api from './lib/api.ts';
import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

const SCALE = Number(__ENV.SCALE || '1');

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

interface Setup {
  users: api.SeededUser[];
}

export async function setup(): Promise<Setup> {
  await api.seed({ users: Math.max(500, Math.round(30000 * SCALE)), avgFollows: 20, celebrities: 3, mediaPerUser: 2, seed: Number(__ENV.SEED || '1') });
  return { users: await api.users(0, 2000) };
}

function pick(list: api.SeededUser[]): api.SeededUser {
  return list[Math.floor(Math.random() * list.length)]!;
}

export async function write(data: Setup): Promise<void> {
  const u = pick(data.users);
  const res = await api.recentMedia(u.access_token, pick(data.users).id, 1);
  const items = res.status === 200 ? (res.json('data') as Array<{ id: string }>) : [];
  if (items.length) check(await api.like(u.access_token, items[0]!.id), { 'like ok': (r) => r.status === 200 });
}

export async function read(data: Setup): Promise<void> {
  check(await api.feed(pick(data.users).access_token), { 'feed ok': (r) => r.status === 200 });
}

export async function split(): Promise<void> {
  await api.admin('/_sim/shards/split', { cluster: 'main', server: 0 });
}
