// ci-gate — a short, steady mix of the 2012 workload for a CI performance gate: the same load every
// run (fixed rates, fixed seed), small enough to finish in about fifteen seconds, with thresholds
// that state the service's budget. A pipeline runs it, fails on thresholds (exit 99), and compares
// its summary with a baseline committed in the repository (`scalegram compare`, exit 1 on a
// regression). See .github/workflows/perf-gate.yml and baselines/README.md.
//
// The mix follows the ratios of ../shared/BRIEF.md ("Load figures": Oct 2011, 25 photos/s and
// 90 likes/s; feed reads assumed at 10 per upload as in android-launch), scaled down 5× so that a
// CI runner serves all of it on time: 5 uploads/s, 18 likes/s, 50 feed reads/s, 4 signups/s.
// -e SLOW_DB_MS=N rehearses a regression: after seeding, every database query takes N ms longer
// (POST /_sim/db/service-time), as a missing index or an overloaded server would.
// Run: scalegram run scenarios/ci-gate.ts --seed 1

import { check } from 'k6';
import exec from 'k6/execution';
import * as api from './lib/api.ts';
import { sampleTopology, telemetryScenario } from './lib/telemetry.ts';

// Samples the topology's measures for thresholds under real k6 (Scalegram's runner does it itself).
export { sampleTopology };

const DURATION = __ENV.DURATION || '12s';
const photo = open('./assets/photo.jpg', 'b');

const steady = (rate: number, execName: string, maxVUs: number) => ({
  executor: 'constant-arrival-rate',
  rate,
  timeUnit: '1s',
  duration: DURATION,
  preAllocatedVUs: Math.max(2, Math.ceil(maxVUs / 2)),
  maxVUs,
  exec: execName,
  gracefulStop: '5s',
});

export const options = {
  scenarios: {
    telemetry: telemetryScenario(DURATION),
    signups: steady(4, 'signup', 10),
    uploads: steady(5, 'post', 20),
    likes: steady(18, 'likePhoto', 20),
    feeds: steady(50, 'readFeed', 40),
  },
  thresholds: {
    'http_req_duration{name:feed}': ['p(95)<250'],
    'http_req_duration{name:upload}': ['p(95)<1500'],
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    cache_hit_rate: ['avg>0.6'],
    fanout_lag_ms: ['max<5000'],
  },
};

interface Setup {
  users: api.SeededUser[];
  celebrities: api.SeededUser[];
}

export async function setup(): Promise<Setup> {
  const seeded = await api.seed({ users: 5000, avgFollows: 20, celebrities: 3, mediaPerUser: 2, seed: Number(__ENV.SEED || '1') });
  const users = await api.users(0, 1000);
  const celebrities = [...seeded.sample].sort((a, b) => (b.followed_by ?? 0) - (a.followed_by ?? 0)).slice(0, 3);
  if (__ENV.SLOW_DB_MS) await api.admin('/_sim/db/service-time', { serviceTimeMs: Number(__ENV.SLOW_DB_MS) });
  return { users, celebrities };
}

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(Math.random() * list.length)]!;
}

export async function signup(data: Setup): Promise<void> {
  const n = exec.scenario.iterationInTest;
  const user = await api.signup(`gate_${exec.vu.idInTest}_${n}`, `Gate user ${n}`);
  if (!check(user, { 'signed up': (u) => u !== null })) return;
  check(await api.follow(user!.access_token, pick(data.celebrities).id), { 'follow ok': (r) => r.status === 200 });
}

export async function post(data: Setup): Promise<void> {
  const res = await api.upload(pick(data.users).access_token, photo, 'CI gate #scalegram');
  check(res, { 'upload ok': (r) => r.status === 200 });
}

export async function likePhoto(data: Setup): Promise<void> {
  const owner = Math.random() < 0.5 ? pick(data.celebrities) : pick(data.users);
  const viewer = pick(data.users);
  const res = await api.recentMedia(viewer.access_token, owner.id, 1);
  const items = res.status === 200 ? (res.json('data') as Array<{ id: string }>) : [];
  if (items.length === 0) return;
  check(await api.like(viewer.access_token, items[0]!.id), { 'like ok': (r) => r.status === 200 });
}

export async function readFeed(data: Setup): Promise<void> {
  check(await api.feed(pick(data.users).access_token), { 'feed ok': (r) => r.status === 200 });
}
