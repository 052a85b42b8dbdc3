// replica-failover — replication lag spikes, then a primary fails and its replica is promoted.
// Stale reads during the spike and writes lost on promotion are counted, not hidden.
//
// Numbers (../shared/BRIEF.md, "Replicas"): every primary streams to a replica in another zone;
// reads may go to replicas and be stale by the lag. The spike (LAG_MS, default 5 s) and the failure
// time are assumed; write and read rates are a like-heavy mix (Oct 2011: 90 likes/s, scaled).
// Run: scalegram run scenarios/replica-failover.ts --speed 10 --scale 0.5

import { check } from 'k6';
import * as api from './lib/api.ts';
import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

export const topology = { extends: '2012-sharded', database: { readPolicy: 'replica' } };

const SCALE = Number(__ENV.SCALE || '1');
const SPEED = Number(__ENV.SPEED || '1');
// The spike in real-world ms; like every duration it is compressed by --speed.
const LAG_MS = Number(__ENV.LAG_MS || '5000');

export const options = {
  scenarios: {
    telemetry: telemetryScenario('15m'),
    likes: { executor: 'constant-arrival-rate', rate: 90, timeUnit: '1s', duration: '15m', preAllocatedVUs: 30, maxVUs: 200, exec: 'likeSomething' },
    reads: { executor: 'constant-arrival-rate', rate: 300, timeUnit: '1s', duration: '15m', preAllocatedVUs: 50, maxVUs: 300, exec: 'readMedia' },
    // The lag spikes at 3 m; at 6 m, with the replica still behind, the primary fails and the
    // replica is promoted (the writes it had not applied are lost, and counted); at 9 m lag is back.
    lag_spike: { executor: 'shared-iterations', vus: 1, iterations: 1, startTime: '3m', exec: 'spike' },
    failover: { executor: 'shared-iterations', vus: 1, iterations: 1, startTime: '6m', exec: 'failPrimary' },
    lag_back: { executor: 'shared-iterations', vus: 1, iterations: 1, startTime: '9m', exec: 'calm' },
  },
  thresholds: {
    replica_lag_ms: [`max<${(LAG_MS * 1.2) / SPEED}`], // no worse than the injected spike
    http_req_failed: ['rate<0.05'],
  },
};

interface Setup {
  users: api.SeededUser[];
}

export async function setup(): Promise<Setup> {
  await api.seed({ users: Math.max(500, Math.round(20000 * SCALE)), avgFollows: 20, celebrities: 3, mediaPerUser: 3, seed: Number(__ENV.SEED || '1') });
  return { users: await api.users(0, 2000) };
}

async function someMedia(u: api.SeededUser, owner: api.SeededUser): Promise<string | null> {
  const res = await api.recentMedia(u.access_token, owner.id, 3);
  const items = res.status === 200 ? (res.json('data') as Array<{ id: string }>) : [];
  return items.length ? items[Math.floor(Math.random() * items.length)]!.id : null;
}

function pick(list: api.SeededUser[]): api.SeededUser {
  return list[Math.floor(Math.random() * list.length)]!;
}

export async function likeSomething(data: Setup): Promise<void> {
  const u = pick(data.users);
  const id = await someMedia(u, pick(data.users));
  if (id) check(await api.like(u.access_token, id), { 'like ok': (r) => r.status === 200 || r.status === 503 });
}

export async function readMedia(data: Setup): Promise<void> {
  const u = pick(data.users);
  const id = await someMedia(u, pick(data.users));
  if (id) check(await api.media(u.access_token, id), { 'read ok': (r) => r.status === 200 });
}

export async function spike(): Promise<void> {
  await api.admin('/_sim/db/lag', { lagMs: LAG_MS / SPEED });
}

export async function calm(): Promise<void> {
  await api.admin('/_sim/db/lag', { lagMs: 20 / SPEED });
}

export async function failPrimary(): Promise<void> {
  await api.admin('/_sim/db/db-3/fail');
}
